/* SPDX-License-Identifier: Apache-2.0 */
/* The definitions of every map and global variable of the svclb object
 * (lib/maps.h); the entry files declare them extern and the link
 * (bpftool gen object) binds them here. */
#define SVCLB_DEFINE_MAPS
#include "lib/maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
