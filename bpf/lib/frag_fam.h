/* SPDX-License-Identifier: Apache-2.0 */
/* The family-generic part of lib/frag.h (lib/family.h): compiled once per
 * family, so no include guard. frag4_* use frag_v1, frag6_* frag6_v1. */

/* After parse_ipv4 / parse_ipv6 set p->frag. First fragment parsed whole
 * (PARSE_OK): records its ports; later fragment (PARSE_FRAG): looks them
 * up. Returns PARSE_OK (p->sport/dport set) or PARSE_NOT_OURS (anything
 * else, and a later fragment of an unknown datagram, counted). */
static __always_inline int FN(frag, parsed)(int ret, FAM_PKT *p)
{
	FAM_FRAG_KEY k = {
		.saddr = p->saddr,
		.daddr = p->daddr,
		.id = p->ip_id,
		.proto = p->proto,
	};
	struct frag_value *fv;

	if (ret == PARSE_OK) {
		struct frag_value nv = { .sport = p->sport, .dport = p->dport };

		bpf_map_update_elem(&FAM_FRAG_MAP, &k, &nv, BPF_ANY);
		return PARSE_OK;
	}
	if (ret != PARSE_FRAG)
		return PARSE_NOT_OURS;
	fv = bpf_map_lookup_elem(&FAM_FRAG_MAP, &k);
	if (!fv) {
		count_ct_event(CT_EV_FRAG_NO_FIRST);
		return PARSE_NOT_OURS;
	}
	p->sport = fv->sport;
	p->dport = fv->dport;
	return PARSE_OK;
}
