/* SPDX-License-Identifier: Apache-2.0 */
/* An XDP program that passes everything, for the e2e labs: the "other"
 * program beside svclb in libxdp's dispatcher (xdp_attach.sh), and on the
 * lan-side peers of a tuned lab's veth NICs, whose NAPI only then receives
 * XDP_TX / redirected frames (tests/testlib/multinode.sh, MN_TUNED=1).
 * Built by CMake like every BPF object (cmake/BpfObject.cmake). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int other_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
