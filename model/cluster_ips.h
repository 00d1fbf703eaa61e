// ClusterIP families and allocation for Store::apply (model/cluster_ips.cpp).
// Internal to the model, like internal.h.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "model/internal.h"
#include "model/model.h"

namespace svclb::model_internal {

class ClusterIPAllocator {
 public:
  using Key = std::pair<std::string, std::string>;  // (namespace, name)

  explicit ClusterIPAllocator(const StoreConfig& cfg);
  // The addresses a stored Service holds.
  void hold(const Service& s, const Key& key);
  // An address asked for explicitly by a Service of the apply under way:
  // never handed out to another one of that apply.
  void request(const Service& s);
  // Defaults ipFamilyPolicy/ipFamilies and fills clusterIPs (clusterIP =
  // clusterIPs[0]) of `s`, a create (`old` null) or an update; the error in
  // kube-apiserver's words. Changes nothing held: commit() does.
  Status assign(Service& s, const Service* old, const Key& key) const;
  // `s` (stored under `key`, formerly `old`) holds its addresses now.
  void commit(const Service* old, const Service& s, const Key& key);

 private:
  const ServiceRange* range(bool v6) const;
  std::optional<IpAddr> next(const ServiceRange& r) const;

  std::vector<ServiceRange> ranges_;  // primary family first; empty: bad --service-cidr
  std::string rangeText_;
  uint32_t clusterDNS_ = 0;
  std::optional<IpAddr> clusterDNS6_;
  std::map<IpAddr, Key> used_;
  std::set<IpAddr> requested_;
};

// A Service stored before svclb knew IP families (a state file of an older
// svclb): clusterIPs from clusterIP, ipFamilies from them, SingleStack.
void inferIPFamilies(Service& s);

}  // namespace svclb::model_internal
