// toJson/fromJson: Kubernetes API shape and exact round trips.
#include <gtest/gtest.h>

#include "model/model.h"

namespace svclb {
namespace {

using nlohmann::json;

Service fullService() {
  Service s;
  s.meta = ObjectMeta{"edge",
                      "frontend",
                      {{"tier", "edge"}},
                      {{"svclb.io/weight", "2"}},
                      "uid-1",
                      "2024-05-01T10:00:00Z"};
  s.type = "LoadBalancer";
  s.clusterIP = "10.96.0.77";
  s.clusterIPs = {"10.96.0.77"};
  s.ipFamilies = {"IPv4"};
  s.ipFamilyPolicy = "SingleStack";
  s.selector = {{"app", "edge"}};
  s.ports = {ServicePort{"https", "TCP", 443, IntOrString{true, 0, "https"}, 30443, "https"},
             ServicePort{"dns", "UDP", 53, IntOrString{false, 5353, ""}, 0, ""}};
  s.sessionAffinity = "ClientIP";
  s.sessionAffinityTimeoutSeconds = 60;
  s.externalIPs = {"192.0.2.10"};
  s.externalTrafficPolicy = "Local";
  s.internalTrafficPolicy = "Cluster";
  s.loadBalancerIP = "198.51.100.7";
  s.loadBalancerSourceRanges = {"203.0.113.0/24"};
  s.healthCheckNodePort = 31000;
  s.loadBalancerIngressIPs = {"198.51.100.7"};
  return s;
}

TEST(ModelJson, ServiceShape) {
  json j = toJson(fullService());
  EXPECT_EQ(j["apiVersion"], "v1");
  EXPECT_EQ(j["kind"], "Service");
  EXPECT_EQ(j["metadata"]["name"], "edge");
  EXPECT_EQ(j["metadata"]["namespace"], "frontend");
  EXPECT_EQ(j["metadata"]["uid"], "uid-1");
  EXPECT_EQ(j["metadata"]["creationTimestamp"], "2024-05-01T10:00:00Z");
  EXPECT_EQ(j["metadata"]["labels"]["tier"], "edge");
  EXPECT_EQ(j["spec"]["clusterIP"], "10.96.0.77");
  EXPECT_EQ(j["spec"]["clusterIPs"], json::array({"10.96.0.77"}));
  EXPECT_EQ(j["spec"]["type"], "LoadBalancer");
  EXPECT_EQ(j["spec"]["ports"][0]["targetPort"], "https");
  EXPECT_EQ(j["spec"]["ports"][1]["targetPort"], 5353);
  EXPECT_EQ(j["spec"]["ports"][0]["nodePort"], 30443);
  EXPECT_FALSE(j["spec"]["ports"][1].contains("nodePort"));
  EXPECT_EQ(j["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"], 60);
  EXPECT_EQ(j["status"]["loadBalancer"]["ingress"][0]["ip"], "198.51.100.7");

  Service plain;
  plain.meta.name = "p";
  plain.ports = {ServicePort{"", "TCP", 80, IntOrString{false, 80, ""}, 0, ""}};
  json pj = toJson(plain);
  EXPECT_FALSE(pj["spec"].contains("clusterIP"));
  EXPECT_FALSE(pj["spec"].contains("sessionAffinityConfig"));
  EXPECT_EQ(pj["spec"]["sessionAffinity"], "None");
  EXPECT_EQ(pj["status"], json::parse(R"({"loadBalancer":{}})"));
}

TEST(ModelJson, RoundTripsExactly) {
  Endpoints e;
  e.meta = ObjectMeta{"edge", "frontend", {}, {{"a", "b"}}, "uid-2", "2024-05-01T10:00:00Z"};
  e.subsets = {EndpointSubset{
      {EndpointAddress{"10.0.0.1", "pod-a", "node-1", "Pod", "edge-1", "frontend"}},
      {EndpointAddress{"10.0.0.2", "", "", "", "", ""}},
      {EndpointPort{"https", "TCP", 8443, "https"}, EndpointPort{"dns", "UDP", 5353, ""}}}};

  EndpointSlice s;
  s.meta = ObjectMeta{"edge-x", "frontend", {{"kubernetes.io/service-name", "edge"}}, {}, "", ""};
  s.addressType = "IPv4";
  s.endpoints = {
      SliceEndpoint{{"10.0.0.1"}, {true, true, false}, "pod-a", "node-1", "z1", "Pod", "a", "f"},
      SliceEndpoint{{"10.0.0.2", "10.0.0.3"}, {false, std::nullopt, true}, "", "", "", "", "", ""},
      SliceEndpoint{{"10.0.0.4"}, {}, "", "", "", "", "", ""}};
  s.ports = {EndpointPort{"", "TCP", 0, ""}, EndpointPort{"https", "TCP", 8443, "https"}};

  Service headless;
  headless.meta.name = "h";
  headless.clusterIP = "None";
  headless.internalTrafficPolicy = "Cluster";  // as decoding defaults it (the API's default)

  for (const Object& o : {Object{fullService()}, Object{e}, Object{s}, Object{headless}}) {
    json j = toJson(o);
    auto back = fromJson(j);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_TRUE(*back == o) << j.dump(2);
    EXPECT_EQ(toJson(*back), j);
    // And through text, as the state file stores it.
    auto again = fromJson(json::parse(j.dump()));
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(*again == o);
  }
}

TEST(ModelJson, FromJsonErrors) {
  EXPECT_FALSE(fromJson(json::array()).ok());
  auto unknown = fromJson(json::parse(R"({"apiVersion":"v1","kind":"Pod"})"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message,
            "invalid object: no matches for kind \"Pod\" in version \"v1\"");
  auto badType = fromJson(json::parse(
      R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"x"},"spec":{"ports":[{"port":"80"}]}})"));
  ASSERT_FALSE(badType.ok());
  EXPECT_EQ(badType.error().message,
            "invalid object: ValidationError(Service.spec.ports[0].port): invalid type for "
            "io.k8s.api.core.v1.ServicePort.port: got \"string\", expected \"integer\"");
}

TEST(ModelJson, ClusterIPsOnlyIsAccepted) {
  auto o = fromJson(json::parse(
      R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"x"},"spec":{"clusterIPs":["10.96.0.9"],"ports":[{"port":80}]}})"));
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(std::get<Service>(*o).clusterIP, "10.96.0.9");
}

}  // namespace
}  // namespace svclb
