/* SPDX-License-Identifier: Apache-2.0 */
/* One library for both address families (issue 16). The family-generic
 * parts of the decision (lib/ct_fam.h: connection tracking, lib/lb_fam.h:
 * Service lookup, selection, affinity, source ranges, new flows) are
 * written once in terms of the names below and compiled twice: lib/ct.h and
 * lib/lb.h include them with SVCLB_FAM 4 and again with SVCLB_FAM 6, each
 * time between this header and lib/family_end.h. FN(lb, decide) names
 * lb4_decide, then lb6_decide; FAM_ADDR is __be32, then struct v6addr (a
 * struct: assigned and passed by value alike). The IPv4 code that results
 * is the code of before the split: same types, maps and operations.
 * Family-specific code (parsing, header rewrites, checksums, FIB, rejects)
 * lives in the per-family functions of parse.h, nat.h, reject.h. */
#ifndef SVCLB_FAM
#error "define SVCLB_FAM (4 or 6) before including lib/family.h"
#endif

#define FN_CAT(p, f, n) p##f##_##n
#define FN_X(p, f, n)	FN_CAT(p, f, n)
#define FN(p, n)	FN_X(p, SVCLB_FAM, n)

#if SVCLB_FAM == 4
#define FAM_ADDR	   __be32
#define FAM_PKT		   struct pkt4
#define FAM_VERDICT	   struct lb_verdict
#define FAM_CT_KEY	   struct ct_key
#define FAM_CT_VALUE	   struct ct_value
#define FAM_CT_MAP	   ct_v2
#define FAM_CT_EST_MAP	   ct_est_v2
#define FAM_BE_REV_KEY	   struct be_rev_key
#define FAM_BE_REV_VALUE   struct be_rev_value
#define FAM_BE_REV_MAP	   be_rev_v1
#define FAM_SVC_KEY	   struct svc_key
#define FAM_SVC_MAP	   svc_v1
#define FAM_AFF_KEY	   struct affinity_key
#define FAM_AFF_MAP	   affinity_v1
#define FAM_SRC_KEY	   struct src_range_key
#define FAM_SRC_MAP	   src_ranges_v1
#define FAM_SOCK_REV_KEY   struct sock_rev_key
#define FAM_SOCK_REV_VALUE struct sock_rev_value
#define FAM_SOCK_REV_MAP   sock_rev_v1
#define FAM_SOCK_FLOW	   struct sock_flow
#define FAM_SOCK_FLOW_MAP  sock_flow_v2
#define FAM_FRAG_KEY	   struct frag_key
#define FAM_FRAG_MAP	   frag_v1
#define FAM_ETH_P	   ETH_P_IP
#define FAM_SADDR_OFF	   12 /* in the IP header */
#define FAM_DADDR_OFF	   16
#define FAM_ADDR_EQ(a, b)  ((a) == (b))
#define FAM_ADDR_ZERO(a)   ((a) == 0)
/* The address as one 32-bit word for the flow hash. */
#define FAM_ADDR_FOLD(a) (a)
/* An exact-match LPM key: svc_id's 32 bits + the address's. */
#define FAM_SRC_FULL_PREFIX 64
#elif SVCLB_FAM == 6
#define FAM_ADDR	    struct v6addr
#define FAM_PKT		    struct pkt6
#define FAM_VERDICT	    struct lb6_verdict
#define FAM_CT_KEY	    struct ct6_key
#define FAM_CT_VALUE	    struct ct6_value
#define FAM_CT_MAP	    ct6_v1
#define FAM_CT_EST_MAP	    ct6_est_v1
#define FAM_BE_REV_KEY	    struct be_rev6_key
#define FAM_BE_REV_VALUE    struct be_rev6_value
#define FAM_BE_REV_MAP	    be_rev6_v1
#define FAM_SVC_KEY	    struct svc6_key
#define FAM_SVC_MAP	    svc6_v1
#define FAM_AFF_KEY	    struct affinity6_key
#define FAM_AFF_MAP	    affinity6_v1
#define FAM_SRC_KEY	    struct src_range6_key
#define FAM_SRC_MAP	    src_ranges6_v1
#define FAM_SOCK_REV_KEY    struct sock_rev6_key
#define FAM_SOCK_REV_VALUE  struct sock_rev6_value
#define FAM_SOCK_REV_MAP    sock_rev6_v1
#define FAM_SOCK_FLOW	    struct sock_flow6
#define FAM_SOCK_FLOW_MAP   sock_flow6_v2
#define FAM_FRAG_KEY	    struct frag6_key
#define FAM_FRAG_MAP	    frag6_v1
#define FAM_ETH_P	    ETH_P_IPV6
#define FAM_SADDR_OFF	    8
#define FAM_DADDR_OFF	    24
#define FAM_ADDR_EQ(a, b)   v6_equal(&(a), &(b))
#define FAM_ADDR_ZERO(a)    (((a).w[0] | (a).w[1] | (a).w[2] | (a).w[3]) == 0)
#define FAM_ADDR_FOLD(a)    ((a).w[0] ^ (a).w[1] ^ (a).w[2] ^ (a).w[3])
#define FAM_SRC_FULL_PREFIX 160
#else
#error "SVCLB_FAM must be 4 or 6"
#endif
