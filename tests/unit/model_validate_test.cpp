// validate(): table of objects built in code -> exact kubectl message.
#include <gtest/gtest.h>

#include "model/model.h"

namespace svclb {
namespace {

Service web() {
  Service s;
  s.meta.name = "web";
  s.ports.push_back(ServicePort{"", "TCP", 80, IntOrString{false, 8080, ""}, 0, ""});
  return s;
}

std::string errOf(const Object& o) {
  Status st = validate(o);
  return st.ok() ? "" : st.error().message;
}

TEST(ModelValidate, ValidObjectsPass) {
  EXPECT_EQ(errOf(web()), "");
  Service headless = web();
  headless.clusterIP = "None";
  headless.ports.clear();
  EXPECT_EQ(errOf(headless), "");
  Service ext;
  ext.meta.name = "db";
  ext.type = "ExternalName";
  ext.externalName = "db.example.com.";
  EXPECT_EQ(errOf(ext), "");
  Service affinity = web();
  affinity.sessionAffinity = "ClientIP";
  affinity.sessionAffinityTimeoutSeconds = 86400;
  EXPECT_EQ(errOf(affinity), "");
  Service sctp = web();
  sctp.ports[0].protocol = "SCTP";
  EXPECT_EQ(errOf(sctp), "");
}

struct Case {
  const char* what;
  std::function<void(Service&)> mutate;
  const char* want;
};

TEST(ModelValidate, ServiceFieldErrors) {
  const Case cases[] = {
      {"port range", [](Service& s) { s.ports[0].port = 70000; },
       "The Service \"web\" is invalid: spec.ports[0].port: Invalid value: 70000: must be between "
       "1 and 65535, inclusive"},
      {"negative targetPort", [](Service& s) { s.ports[0].targetPort.intVal = -1; },
       "The Service \"web\" is invalid: spec.ports[0].targetPort: Invalid value: -1: must be "
       "between 1 and 65535, inclusive"},
      {"targetPort name with hyphens",
       [](Service& s) {
         s.ports[0].targetPort = IntOrString{true, 0, "-a--b"};
       },
       "The Service \"web\" is invalid: \n* spec.ports[0].targetPort: Invalid value: \"-a--b\": "
       "must not contain consecutive hyphens\n* spec.ports[0].targetPort: Invalid value: "
       "\"-a--b\": must not begin or end with a hyphen"},
      {"empty protocol", [](Service& s) { s.ports[0].protocol = ""; },
       "The Service \"web\" is invalid: spec.ports[0].protocol: Required value"},
      {"port name not a DNS label", [](Service& s) { s.ports[0].name = "HTTP"; },
       "The Service \"web\" is invalid: spec.ports[0].name: Invalid value: \"HTTP\": a lowercase "
       "RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
       "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
       "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"},
      {"name too long", [](Service& s) { s.meta.name = std::string(64, 'a'); },
       "The Service \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" is "
       "invalid: "
       "metadata.name: Invalid value: "
       "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": must be no more than "
       "63 characters"},
      {"empty name", [](Service& s) { s.meta.name = ""; },
       "The Service \"\" is invalid: metadata.name: Required value: name or generateName is "
       "required"},
      {"two clusterIPs of one family",
       [](Service& s) {
         s.clusterIP = "10.96.0.5";
         s.clusterIPs = {"10.96.0.5", "10.96.0.6"};
       },
       "The Service \"web\" is invalid: spec.clusterIPs: Invalid value: [\"10.96.0.5\","
       "\"10.96.0.6\"]: may specify no more than one IP for each IP family"},
      {"clusterIP not an address",
       [](Service& s) {
         s.clusterIP = "10.96.0.5";
         s.clusterIPs = {"10.96.0.5", "fd00::zz"};
       },
       "The Service \"web\" is invalid: spec.clusterIPs[1]: Invalid value: \"fd00::zz\": must be a "
       "valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"},
      {"None not alone",
       [](Service& s) {
         s.clusterIP = "None";
         s.clusterIPs = {"None", "fd00::1"};
       },
       "The Service \"web\" is invalid: spec.clusterIPs: Invalid value: [\"None\","
       "\"fd00::1\"]: 'None' must be the first and only value"},
      {"family does not match the address",
       [](Service& s) {
         s.clusterIP = "fd00::1";
         s.clusterIPs = {"fd00::1"};
         s.ipFamilies = {"IPv4"};
       },
       "The Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: \"fd00::1\": expected "
       "an IPv4 value as indicated by `ipFamilies[0]`"},
      {"unknown and duplicate families",
       [](Service& s) {
         s.ipFamilies = {"IPv6", "IPv6", "IPX"};
       },
       "The Service \"web\" is invalid: \n* spec.ipFamilies[1]: Duplicate value: \"IPv6\"\n* "
       "spec.ipFamilies[2]: Unsupported value: \"IPX\": supported values: \"IPv4\", \"IPv6\""},
      {"unknown policy", [](Service& s) { s.ipFamilyPolicy = "DualStack"; },
       "The Service \"web\" is invalid: spec.ipFamilyPolicy: Unsupported value: \"DualStack\": "
       "supported values: \"PreferDualStack\", \"RequireDualStack\", \"SingleStack\""},
      {"ExternalName with clusterIP",
       [](Service& s) {
         s.type = "ExternalName";
         s.externalName = "x.example.com";
         s.clusterIP = "10.96.0.1";
       },
       "The Service \"web\" is invalid: spec.clusterIPs: Forbidden: may not be set for "
       "ExternalName services"},
      {"LoadBalancer headless",
       [](Service& s) {
         s.type = "LoadBalancer";
         s.clusterIP = "None";
       },
       "The Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: \"None\": may not be "
       "set "
       "to 'None' for LoadBalancer services"},
      {"bad externalIP", [](Service& s) { s.externalIPs = {"192.0.2"}; },
       "The Service \"web\" is invalid: spec.externalIPs[0]: Invalid value: \"192.0.2\": must be a "
       "valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"},
      {"bad source range",
       [](Service& s) {
         s.type = "LoadBalancer";
         s.loadBalancerSourceRanges = {"10.0.0.0/33"};
       },
       "The Service \"web\" is invalid: spec.LoadBalancerSourceRanges[0]: Invalid value: "
       "\"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"},
      {"bad externalTrafficPolicy",
       [](Service& s) {
         s.type = "NodePort";
         s.externalTrafficPolicy = "Nearest";
       },
       "The Service \"web\" is invalid: spec.externalTrafficPolicy: Unsupported value: "
       "\"Nearest\": supported values: \"Cluster\", \"Local\""},
      {"healthCheckNodePort without Local",
       [](Service& s) {
         s.type = "LoadBalancer";
         s.healthCheckNodePort = 31000;
       },
       "The Service \"web\" is invalid: spec.healthCheckNodePort: Invalid value: 31000: may only "
       "be "
       "set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"},
      {"bad internalTrafficPolicy", [](Service& s) { s.internalTrafficPolicy = "Node"; },
       "The Service \"web\" is invalid: spec.internalTrafficPolicy: Unsupported value: \"Node\": "
       "supported values: \"Cluster\", \"Local\""},
      {"bad trafficDistribution", [](Service& s) { s.trafficDistribution = "PreferLocal"; },
       "The Service \"web\" is invalid: spec.trafficDistribution: Unsupported value: "
       "\"PreferLocal\": supported values: \"PreferClose\", \"PreferSameZone\", "
       "\"PreferSameNode\""},
      {"duplicate nodePort",
       [](Service& s) {
         s.type = "NodePort";
         s.ports[0].name = "a";
         s.ports[0].nodePort = 30000;
         s.ports.push_back(ServicePort{"b", "TCP", 81, IntOrString{false, 81, ""}, 30000, ""});
       },
       "The Service \"web\" is invalid: spec.ports[1].nodePort: Duplicate value: 30000"},
      {"negative timeout",
       [](Service& s) {
         s.sessionAffinity = "ClientIP";
         s.sessionAffinityTimeoutSeconds = -5;
       },
       "The Service \"web\" is invalid: spec.sessionAffinityConfig.clientIP.timeoutSeconds: "
       "Invalid value: -5: must be greater than 0 and less than 86400"},
      {"empty type", [](Service& s) { s.type = ""; },
       "The Service \"web\" is invalid: spec.type: Required value"},
  };
  for (const auto& c : cases) {
    Service s = web();
    c.mutate(s);
    EXPECT_EQ(errOf(s), c.want) << c.what;
  }
}

TEST(ModelValidate, HugeNamesDoNotHurt) {
  Service s = web();
  s.meta.name = std::string(1 << 20, 'a');
  std::string err = errOf(s);
  EXPECT_NE(err.find("metadata.name: Invalid value: "), std::string::npos);
  EXPECT_NE(err.find("must be no more than 63 characters"), std::string::npos);
  Endpoints e;
  e.meta.name = "a..b";
  EXPECT_NE(errOf(e).find("a lowercase RFC 1123 subdomain must consist of"), std::string::npos);
  e.meta.name = "a.b-c.d";
  EXPECT_EQ(errOf(e), "");
}

TEST(ModelValidate, TimeoutIgnoredWithoutClientIP) {
  Service s = web();
  s.sessionAffinityTimeoutSeconds = 0;  // only checked for ClientIP
  EXPECT_EQ(errOf(s), "");
}

TEST(ModelValidate, EndpointsAndSlices) {
  Endpoints e;
  e.meta.name = "web";
  e.subsets.push_back(EndpointSubset{{EndpointAddress{"10.0.0.1", "Bad_Host", "", "", "", ""}},
                                     {},
                                     {EndpointPort{"", "TCP", 8080, ""}}});
  EXPECT_EQ(errOf(e),
            "The Endpoints \"web\" is invalid: subsets[0].addresses[0].hostname: Invalid value: "
            "\"Bad_Host\": a lowercase RFC 1123 label must consist of lower case alphanumeric "
            "characters or '-', and must start and end with an alphanumeric character (e.g. "
            "'my-name',  or '123-abc', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')");
  e.subsets[0].addresses[0].hostname = "";
  EXPECT_EQ(errOf(e), "");
  e.meta.name = "web.v2";  // Endpoints names are DNS subdomains
  EXPECT_EQ(errOf(e), "");
  e.subsets[0].ports[0].protocol = "ICMP";
  EXPECT_EQ(errOf(e),
            "The Endpoints \"web.v2\" is invalid: subsets[0].ports[0].protocol: Unsupported value: "
            "\"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"");

  EndpointSlice s;
  s.meta.name = "web-abc";
  s.addressType = "IPv6";
  s.endpoints.push_back(SliceEndpoint{{"10.0.0.1"}, {}, "", "", "", "", "", ""});
  EXPECT_EQ(errOf(s),
            "The EndpointSlice \"web-abc\" is invalid: endpoints[0].addresses[0]: Invalid value: "
            "\"10.0.0.1\": must be a valid IPv6 address");
  s.addressType = "FQDN";  // accepted, ignored by frontends()
  s.endpoints[0].addresses = {"pod.example.com"};
  EXPECT_EQ(errOf(s), "");
  s.addressType = "IPv4";
  s.endpoints[0].addresses = {"10.0.0.1"};
  s.ports.push_back(EndpointPort{"", "TCP", 70000, ""});
  EXPECT_EQ(
      errOf(s),
      "The EndpointSlice \"web-abc\" is invalid: ports[0].port: Invalid value: 70000: must be "
      "between 1 and 65535, inclusive");
}

}  // namespace
}  // namespace svclb
