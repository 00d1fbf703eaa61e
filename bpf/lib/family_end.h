/* SPDX-License-Identifier: Apache-2.0 */
/* Ends one family's pass over the generic code (lib/family.h). */
#undef FN_CAT
#undef FN_X
#undef FN
#undef FAM_ADDR
#undef FAM_PKT
#undef FAM_VERDICT
#undef FAM_CT_KEY
#undef FAM_CT_VALUE
#undef FAM_CT_MAP
#undef FAM_CT_EST_MAP
#undef FAM_SVC_KEY
#undef FAM_SVC_MAP
#undef FAM_AFF_KEY
#undef FAM_AFF_MAP
#undef FAM_SRC_KEY
#undef FAM_SRC_MAP
#undef FAM_SOCK_REV_KEY
#undef FAM_SOCK_REV_VALUE
#undef FAM_SOCK_REV_MAP
#undef FAM_ADDR_EQ
#undef FAM_ADDR_FOLD
#undef FAM_SRC_FULL_PREFIX
#undef SVCLB_FAM
