// apiWarnings: the warnings kube-apiserver v1.37.2 returned for these
// objects, as kubectl printed them (tests/k8s/api_parity.sh compares
// svcctl and kubectl on a live API server).
#include <gtest/gtest.h>

#include "model/model.h"

namespace svclb {
namespace {

std::vector<std::string> warningsOf(const std::string& yaml, bool create = true) {
  auto objs = parseManifests(yaml, "t.yaml");
  EXPECT_TRUE(objs.ok()) << objs.error().message;
  if (!objs.ok() || objs->size() != 1) return {"<parse>"};
  return apiWarnings(objs->front(), create);
}

using Lines = std::vector<std::string>;

TEST(ModelWarnings, ServiceFields) {
  EXPECT_EQ(warningsOf("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n"
                       "  ports: [{port: 80}]\n"),
            Lines{});
  EXPECT_EQ(warningsOf("apiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec:\n"
                       "  type: LoadBalancer\n  ports: [{port: 80}]\n"
                       "  externalIPs: [192.168.50.10, \"2001:DB8::1\"]\n"
                       "  loadBalancerSourceRanges: [10.0.0.0/24, \"2001:db8:0::/64\"]\n"),
            (Lines{"spec.externalIPs[1]: IPv6 address \"2001:DB8::1\" should be in RFC 5952 "
                   "canonical format (\"2001:db8::1\")",
                   "spec.externalIPs is deprecated and may no longer be implemented in some "
                   "clusters",
                   "spec.loadBalancerSourceRanges[1]: IPv6 CIDR value \"2001:db8:0::/64\" should "
                   "be in RFC 5952 canonical format (\"2001:db8::/64\")"}));
  EXPECT_EQ(warningsOf("apiVersion: v1\nkind: Service\nmetadata: {name: hl}\nspec:\n"
                       "  clusterIP: None\n  ports: [{port: 80}]\n  sessionAffinity: ClientIP\n"
                       "  externalIPs: [192.168.50.11]\n  externalName: foo.example.com\n"),
            (Lines{"spec.externalIPs is ignored for headless services",
                   "spec.SessionAffinity is ignored for headless services",
                   "spec.externalName is ignored when spec.type is not \"ExternalName\""}));
  EXPECT_EQ(warningsOf("apiVersion: v1\nkind: Service\nmetadata:\n  name: en\n  annotations:\n"
                       "    service.kubernetes.io/topology-aware-hints: auto\nspec:\n"
                       "  type: ExternalName\n  externalName: foo.example.com\n"
                       "  externalIPs: [192.168.50.12]\n"),
            (Lines{"annotation service.kubernetes.io/topology-aware-hints is deprecated, please "
                   "use service.kubernetes.io/topology-mode instead",
                   "spec.externalIPs is ignored when spec.type is \"ExternalName\""}));
  EXPECT_EQ(
      warningsOf("apiVersion: v1\nkind: Service\nmetadata: {name: td}\nspec:\n"
                 "  ports: [{port: 80}]\n  trafficDistribution: PreferClose\n"),
      Lines{"spec.trafficDistribution: \"PreferClose\" is deprecated; use \"PreferSameZone\""});
}

TEST(ModelWarnings, EndpointAddresses) {
  const std::string ep =
      "apiVersion: v1\nkind: Endpoints\nmetadata: {name: td}\nsubsets:\n"
      "- addresses: [{ip: \"2001:DB8::5\"}, {ip: 10.0.0.5}]\n"
      "  notReadyAddresses: [{ip: \"2001:db8:0:0::6\"}]\n  ports: [{port: 80}]\n";
  EXPECT_EQ(warningsOf(ep),
            (Lines{"subsets[0].addresses[0].ip: IPv6 address \"2001:DB8::5\" should be in RFC "
                   "5952 canonical format (\"2001:db8::5\")",
                   "subsets[0].notReadyAddresses[0].ip: IPv6 address \"2001:db8:0:0::6\" should "
                   "be in RFC 5952 canonical format (\"2001:db8::6\")"}));
  // The Endpoints controller's own objects are not checked.
  auto managed = ep;
  managed.replace(managed.find("{name: td}"), 10,
                  "{name: td, labels: {endpoints.kubernetes.io/managed-by: endpoint-controller}}");
  EXPECT_EQ(warningsOf(managed), Lines{});
  // FQDN slices: deprecated, said on create only.
  const std::string fqdn =
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: td-1\n"
      "  labels: {kubernetes.io/service-name: td}\naddressType: FQDN\n"
      "endpoints: [{addresses: [foo.example.com]}]\nports: [{port: 80}]\n";
  EXPECT_EQ(warningsOf(fqdn, true), Lines{"spec.addressType: FQDN endpoints are deprecated"});
  EXPECT_EQ(warningsOf(fqdn, false), Lines{});
}

}  // namespace
}  // namespace svclb
