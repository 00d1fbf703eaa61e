// svcctl formatting: kubectl's table, AGE, PORT(S), EXTERNAL-IP, endpoints,
// describe, -o json/yaml and svclb's own stats/status layouts. No daemon.
#include <gtest/gtest.h>

#include <chrono>

#include "cli/format.h"
#include "cli/table.h"
#include "common/yaml.h"

namespace svclb::cli {
namespace {

using namespace std::chrono_literals;

// The one document of `text`, read by the manifest's YAML reader (libyaml).
Json readOneYaml(const std::string& text) {
  std::vector<Json> docs;
  auto err = yaml::readYaml(text, [&](Json&& d) { docs.push_back(std::move(d)); });
  EXPECT_FALSE(err) << err.value_or("");
  EXPECT_EQ(docs.size(), 1u);
  return docs.empty() ? Json() : docs[0];
}

TimePoint at(const std::string& rfc3339) { return *parseRfc3339(rfc3339); }

Json webService() {
  return Json::parse(R"({
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "web", "namespace": "default", "uid": "u1",
                 "creationTimestamp": "2024-05-01T12:00:00Z", "labels": {"app": "web"}},
    "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
             "selector": {"app": "web"}, "sessionAffinity": "None",
             "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"],
             "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]},
    "status": {"loadBalancer": {}},
    "svclb": {"ports": [{"name": "http", "endpoints": ["10.244.1.11:8080", "10.244.1.12:8080"]}]}
  })");
}

TEST(CliTable, AlignsLikeGoTabwriter) {
  Table t({"NAME", "TYPE", "AGE"});
  t.addRow({"web", "ClusterIP", "5s"});
  t.addRow({"a-much-longer-name", "LoadBalancer", "2d"});
  EXPECT_EQ(t.render(),
            "NAME                 TYPE           AGE\n"
            "web                  ClusterIP      5s\n"
            "a-much-longer-name   LoadBalancer   2d\n");
}

TEST(CliTable, MinimumWidthAndIndent) {
  Table t({"A", "B"});
  t.addRow({"x", "y"});
  // kubectl's minwidth is 6 even for narrow columns.
  EXPECT_EQ(t.render("  "), "  A     B\n  x     y\n");
}

TEST(CliTable, TabwriterBlocksEndAtLinesWithoutTheColumn) {
  // A line without a tab ends the block: each block gets its own width.
  EXPECT_EQ(tabwrite("a:\t1\nlonger:\t2\nbreak\nb:\t3\n", 0, 2),
            "a:       1\nlonger:  2\nbreak\nb:  3\n");
  // Empty first cells still pad (describe's multi-line labels).
  EXPECT_EQ(tabwrite("Labels:\ta=b\n\tc=d\n", 0, 2), "Labels:  a=b\n         c=d\n");
  // Widths count code points, not bytes.
  EXPECT_EQ(tabwrite("\xc3\xa9\tx\nab\ty\n", 0, 1), "\xc3\xa9  x\nab y\n");
}

TEST(CliAge, HumanDurationMatchesKubectl) {
  struct Case {
    std::chrono::nanoseconds d;
    const char* want;
  };
  const Case cases[] = {
      {-2s, "<invalid>"},
      {-1s, "0s"},
      {-500ms, "0s"},
      {0s, "0s"},
      {5s, "5s"},
      {119s, "119s"},
      {120s, "2m"},
      {192s, "3m12s"},
      {9min + 59s, "9m59s"},
      {10min, "10m"},
      {179min, "179m"},
      {180min, "3h"},
      {3h + 30min, "3h30m"},
      {7h + 59min, "7h59m"},
      {8h, "8h"},
      {47h + 59min, "47h"},
      {48h, "2d"},
      {50h, "2d2h"},
      {7 * 24h + 23h, "7d23h"},
      {8 * 24h, "8d"},
      {729 * 24h, "729d"},
      {730 * 24h, "2y"},
      {800 * 24h, "2y70d"},
      {8 * 365 * 24h, "8y"},
      {3000 * 24h, "8y"},
  };
  for (const auto& c : cases) EXPECT_EQ(humanDuration(c.d), c.want) << c.d.count();
}

TEST(CliAge, AgeFromTimestamp) {
  auto now = at("2024-05-01T12:03:12Z");
  EXPECT_EQ(ageSince("2024-05-01T12:00:00Z", now), "3m12s");
  EXPECT_EQ(ageSince("2024-05-01T14:00:00+02:00", now), "3m12s");
  EXPECT_EQ(ageSince("2024-05-01T12:03:07.250Z", now), "4s");
  EXPECT_EQ(ageSince("", now), "<unknown>");
  EXPECT_EQ(ageSince("yesterday", now), "<unknown>");
}

TEST(CliGet, PortsColumn) {
  Json svc = {{"spec",
               {{"ports",
                 {{{"port", 80}, {"protocol", "TCP"}},
                  {{"port", 443}, {"nodePort", 30443}, {"protocol", "TCP"}},
                  {{"port", 53}, {"protocol", "UDP"}}}}}}};
  EXPECT_EQ(servicePorts(svc), "80/TCP,443:30443/TCP,53/UDP");
  EXPECT_EQ(servicePorts(Json{{"spec", {{"ports", {{{"port", 8080}}}}}}}), "8080/TCP");
  EXPECT_EQ(servicePorts(Json{{"spec", Json::object()}}), "<none>");
}

TEST(CliGet, ExternalIpColumn) {
  struct Case {
    const char* name;
    const char* json;
    bool wide;
    const char* want;
  };
  const Case cases[] = {
      {"clusterip", R"({"spec":{"type":"ClusterIP"}})", false, "<none>"},
      {"default type", R"({"spec":{}})", false, "<none>"},
      {"clusterip externalIPs",
       R"({"spec":{"type":"ClusterIP","externalIPs":["1.2.3.4","5.6.7.8"]}})", false,
       "1.2.3.4,5.6.7.8"},
      {"nodeport", R"({"spec":{"type":"NodePort"}})", false, "<none>"},
      {"lb pending", R"({"spec":{"type":"LoadBalancer"},"status":{"loadBalancer":{}}})", false,
       "<pending>"},
      {"lb ingress",
       R"({"spec":{"type":"LoadBalancer"},"status":{"loadBalancer":{"ingress":[{"ip":"192.168.1.240"}]}}})",
       false, "192.168.1.240"},
      {"lb sorted+hostname",
       R"({"spec":{"type":"LoadBalancer"},"status":{"loadBalancer":{"ingress":[{"ip":"10.0.0.9"},{"hostname":"a.b"}]}}})",
       true, "10.0.0.9,a.b"},
      {"lb truncated",
       R"({"spec":{"type":"LoadBalancer"},"status":{"loadBalancer":{"ingress":[{"ip":"192.168.100.240"},{"ip":"192.168.100.241"}]}}})",
       false, "192.168.100.2..."},
      {"lb wide not truncated",
       R"({"spec":{"type":"LoadBalancer"},"status":{"loadBalancer":{"ingress":[{"ip":"192.168.100.240"},{"ip":"192.168.100.241"}]}}})",
       true, "192.168.100.240,192.168.100.241"},
      {"lb plus externalIPs",
       R"({"spec":{"type":"LoadBalancer","externalIPs":["5.5.5.5"]},"status":{"loadBalancer":{"ingress":[{"ip":"1.1.1.1"}]}}})",
       false, "1.1.1.1,5.5.5.5"},
      {"externalname", R"({"spec":{"type":"ExternalName","externalName":"db.example.com"}})", false,
       "db.example.com"},
  };
  for (const auto& c : cases)
    EXPECT_EQ(serviceExternalIp(Json::parse(c.json), c.wide), c.want) << c.name;
}

TEST(CliGet, ClusterIpColumn) {
  EXPECT_EQ(serviceClusterIp(webService()), "10.96.0.10");
  EXPECT_EQ(serviceClusterIp(Json::parse(R"({"spec":{"clusterIP":"None","clusterIPs":["None"]}})")),
            "None");
  EXPECT_EQ(serviceClusterIp(Json::parse(R"({"spec":{}})")), "<none>");
}

TEST(CliGet, ServiceTable) {
  Json lb = Json::parse(R"({
    "kind":"Service","metadata":{"name":"edge","namespace":"prod","creationTimestamp":"2024-04-29T12:00:00Z"},
    "spec":{"type":"LoadBalancer","clusterIPs":["10.96.0.20"],"selector":{"tier":"edge","app":"gw"},
            "ports":[{"port":80,"nodePort":30310,"protocol":"TCP"},{"port":443,"nodePort":30443,"protocol":"TCP"}]},
    "status":{"loadBalancer":{}}})");
  auto now = at("2024-05-01T12:03:12Z");
  EXPECT_EQ(renderGetTable("Service", {webService()}, {}, now),
            "NAME   TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\n"
            "web    ClusterIP   10.96.0.10   <none>        80/TCP    3m12s\n");
  EXPECT_EQ(
      renderGetTable("Service", {webService(), lb}, {.wide = true, .allNamespaces = true}, now),
      "NAMESPACE   NAME   TYPE           CLUSTER-IP   EXTERNAL-IP   PORT(S)                      "
      "AGE     SELECTOR\n"
      "default     web    ClusterIP      10.96.0.10   <none>        80/TCP                       "
      "3m12s   app=web\n"
      "prod        edge   LoadBalancer   10.96.0.20   <pending>     80:30310/TCP,443:30443/TCP   "
      "2d      app=gw,tier=edge\n");
}

TEST(CliGet, EndpointsColumnTruncatesAfterThree) {
  Json ep = Json::parse(R"({"subsets":[{"addresses":[{"ip":"10.0.0.1"},{"ip":"10.0.0.2"},
      {"ip":"10.0.0.3"},{"ip":"10.0.0.4"},{"ip":"10.0.0.5"}],"ports":[{"port":8080}]}]})");
  EXPECT_EQ(formatEndpointsSubsets(ep), "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 2 more...");
  Json two = Json::parse(
      R"({"subsets":[{"addresses":[{"ip":"10.0.0.1"},{"ip":"fd00::2"}],"ports":[{"port":80}]}]})");
  EXPECT_EQ(formatEndpointsSubsets(two), "10.0.0.1:80,[fd00::2]:80");
  Json headless = Json::parse(R"({"subsets":[{"addresses":[{"ip":"10.0.0.1"}]}]})");
  EXPECT_EQ(formatEndpointsSubsets(headless), "10.0.0.1");
  EXPECT_EQ(formatEndpointsSubsets(Json::parse(R"({"subsets":[]})")), "<none>");
  EXPECT_EQ(formatEndpointsSubsets(Json::object()), "<none>");
}

TEST(CliGet, EndpointsAndSliceTables) {
  auto now = at("2024-05-01T12:00:05Z");
  Json ep = Json::parse(R"({"kind":"Endpoints","metadata":{"name":"web","namespace":"default",
      "creationTimestamp":"2024-05-01T12:00:00Z"},"subsets":[{"addresses":[{"ip":"10.244.1.11"},
      {"ip":"10.244.1.12"}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}]})");
  EXPECT_EQ(renderGetTable("Endpoints", {ep}, {}, now),
            "NAME   ENDPOINTS                           AGE\n"
            "web    10.244.1.11:8080,10.244.1.12:8080   5s\n");
  Json slice = Json::parse(R"({"kind":"EndpointSlice","addressType":"IPv4",
      "metadata":{"name":"web-abc","namespace":"default","creationTimestamp":"2024-05-01T12:00:00Z"},
      "ports":[{"name":"http","port":8080,"protocol":"TCP"}],
      "endpoints":[{"addresses":["10.244.1.11"]},{"addresses":["10.244.1.12"]},
                   {"addresses":["10.244.1.13"]},{"addresses":["10.244.1.14"]}]})");
  EXPECT_EQ(
      renderGetTable("EndpointSlice", {slice}, {}, now),
      "NAME      ADDRESSTYPE   PORTS   ENDPOINTS                                         AGE\n"
      "web-abc   IPv4          8080    10.244.1.11,10.244.1.12,10.244.1.13 + 1 more...   5s\n");
  EXPECT_EQ(formatSlicePorts(Json::object()), "<unset>");
  EXPECT_EQ(formatSliceEndpoints(Json::object()), "<unset>");
  EXPECT_EQ(formatSlicePorts(Json::parse(R"({"ports":[{"name":"dns"},{}]})")), "dns,*");
}

TEST(CliDescribe, ServiceMatchesKubectlLayout) {
  EXPECT_EQ(describeService(webService()),
            "Name:              web\n"
            "Namespace:         default\n"
            "Labels:            app=web\n"
            "Annotations:       <none>\n"
            "Selector:          app=web\n"
            "Type:              ClusterIP\n"
            "IP Family Policy:  SingleStack\n"
            "IP Families:       IPv4\n"
            "IP:                10.96.0.10\n"
            "IPs:               10.96.0.10\n"
            "Port:              http  80/TCP\n"
            "TargetPort:        8080/TCP\n"
            "Endpoints:         10.244.1.11:8080,10.244.1.12:8080\n"
            "Session Affinity:  None\n"
            "Events:            <none>\n");
}

TEST(CliDescribe, ServiceMultiPortNodePortAffinityLabels) {
  Json svc = Json::parse(R"({
    "metadata": {"name": "gw", "namespace": "prod",
                 "labels": {"tier": "edge", "app": "gw"},
                 "annotations": {"owner": "net-team",
                                 "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
    "spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
             "selector": {"app": "gw"}, "sessionAffinity": "ClientIP",
             "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
             "externalTrafficPolicy": "Cluster",
             "ports": [{"port": 80, "protocol": "TCP", "targetPort": "web", "nodePort": 30080},
                       {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}]},
    "svclb": {"ports": [{"name": "", "endpoints": ["10.0.0.1:8080", "10.0.0.2:8080",
                                                  "10.0.0.3:8080", "10.0.0.4:8080"]},
                        {"name": "dns", "endpoints": []}]}
  })");
  EXPECT_EQ(describeService(svc),
            "Name:                      gw\n"
            "Namespace:                 prod\n"
            "Labels:                    app=gw\n"
            "                           tier=edge\n"
            "Annotations:               owner: net-team\n"
            "Selector:                  app=gw\n"
            "Type:                      NodePort\n"
            "IP Families:               <none>\n"
            "IP:                        10.96.0.20\n"
            "IPs:                       10.96.0.20\n"
            "Port:                      <unset>  80/TCP\n"
            "TargetPort:                web/TCP\n"
            "NodePort:                  <unset>  30080/TCP\n"
            "Endpoints:                 10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 1 more...\n"
            "Port:                      dns  53/UDP\n"
            "TargetPort:                5353/UDP\n"
            "Endpoints:                 <none>\n"
            "Session Affinity:          ClientIP\n"
            "Session Affinity Timeout:  10800s\n"
            "External Traffic Policy:   Cluster\n"
            "Events:                    <none>\n");
}

TEST(CliDescribe, TruncatedList) {
  EXPECT_EQ(truncatedList({}, "<none>"), "<none>");
  EXPECT_EQ(truncatedList({"a", "b", "c"}, "<none>"), "a,b,c");
  EXPECT_EQ(truncatedList({"a", "b", "c", "d", "e"}, "<none>"), "a,b,c + 2 more...");
}

TEST(CliDescribe, EndpointSlice) {
  Json slice = Json::parse(R"({"addressType":"IPv4",
      "metadata":{"name":"web-abc","namespace":"default","labels":{"kubernetes.io/service-name":"web"}},
      "ports":[{"name":"http","port":8080,"protocol":"TCP"}],
      "endpoints":[{"addresses":["10.244.1.11"],"conditions":{"ready":true},"nodeName":"n1"}]})");
  EXPECT_EQ(describeEndpointSlice(slice),
            "Name:         web-abc\n"
            "Namespace:    default\n"
            "Labels:       kubernetes.io/service-name=web\n"
            "Annotations:  <none>\n"
            "AddressType:  IPv4\n"
            "Ports:\n"
            "  Name  Port  Protocol\n"
            "  ----  ----  --------\n"
            "  http  8080  TCP\n"
            "Endpoints:\n"
            "  - Addresses:  10.244.1.11\n"
            "    Conditions:\n"
            "      Ready:   true\n"
            "    Hostname:  <unset>\n"
            "    NodeName:  n1\n"
            "    Zone:      <unset>\n"
            "Events:        <none>\n");
}

TEST(CliOutput, ListWrapperStripsInternalKey) {
  Json list = listWrapper({webService()});
  EXPECT_EQ(list["apiVersion"], "v1");
  EXPECT_EQ(list["kind"], "List");
  EXPECT_EQ(list["metadata"], Json({{"resourceVersion", ""}}));
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_FALSE(list["items"][0].contains("svclb"));
  EXPECT_EQ(list["items"][0]["metadata"]["name"], "web");
  EXPECT_EQ(toJsonText(listWrapper({})),
            "{\n    \"apiVersion\": \"v1\",\n    \"items\": [],\n    \"kind\": \"List\",\n"
            "    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n");
  EXPECT_FALSE(stripInternal(webService()).contains("svclb"));
}

TEST(CliOutput, YamlLikeKubectl) {
  Json svc = Json::parse(R"({"apiVersion":"v1","kind":"Service",
      "metadata":{"name":"web","creationTimestamp":"2024-05-01T12:00:00Z","labels":{"app":"web"}},
      "spec":{"clusterIPs":["10.96.0.10"],"ports":[{"port":80,"targetPort":"http"}],"selector":{}},
      "svclb":{"ports":[]}})");
  std::string yaml = toYaml(listWrapper({svc}));
  EXPECT_EQ(yaml,
            "apiVersion: v1\n"
            "items:\n"
            "- apiVersion: v1\n"
            "  kind: Service\n"
            "  metadata:\n"
            "    creationTimestamp: \"2024-05-01T12:00:00Z\"\n"
            "    labels:\n"
            "      app: web\n"
            "    name: web\n"
            "  spec:\n"
            "    clusterIPs:\n"
            "    - 10.96.0.10\n"
            "    ports:\n"
            "    - port: 80\n"
            "      targetPort: http\n"
            "    selector: {}\n"
            "kind: List\n"
            "metadata:\n"
            "  resourceVersion: \"\"\n");
  // And it parses back to the same data.
  Json n = readOneYaml(yaml);
  EXPECT_EQ(n["items"][0]["spec"]["ports"][0]["port"].get<int>(), 80);
  EXPECT_EQ(n["items"][0]["metadata"]["creationTimestamp"].get<std::string>(),
            "2024-05-01T12:00:00Z");
  EXPECT_EQ(n["metadata"]["resourceVersion"].get<std::string>(), "");
}

TEST(CliOutput, YamlQuotesAmbiguousScalars) {
  Json v = {{"a", "true"},
            {"b", "8080"},
            {"c", "no"},
            {"d", "x: y"},
            {"e", "-dash"},
            {"f", "two\nlines"},
            {"g", "10.0.0.1"},
            {"h", nullptr},
            {"i", true},
            {"j", "*"},
            {"k", Json::array({Json::array({1, 2})})}};
  std::string yaml = toYaml(v);
  EXPECT_EQ(yaml,
            "a: \"true\"\nb: \"8080\"\nc: \"no\"\nd: \"x: y\"\ne: \"-dash\"\n"
            "f: \"two\\nlines\"\ng: 10.0.0.1\nh: null\ni: true\nj: \"*\"\nk:\n- - 1\n  - 2\n");
  Json n = readOneYaml(yaml);
  for (const char* k : {"a", "b", "c", "d", "e", "f", "g", "j"})
    EXPECT_EQ(n[k].get<std::string>(), v[k].get<std::string>()) << k;
}

TEST(CliOutput, Names) {
  Json ep = {{"kind", "Endpoints"}, {"metadata", {{"name", "web"}}}};
  Json sl = {{"kind", "EndpointSlice"}, {"metadata", {{"name", "web-abc"}}}};
  EXPECT_EQ(renderNames({webService(), ep, sl}),
            "service/web\nendpoints/web\nendpointslice.discovery.k8s.io/web-abc\n");
}

TEST(CliResults, ApplyAndDeleteLines) {
  Json results = Json::parse(R"([
    {"kind":"Service","namespace":"default","name":"web","action":"created"},
    {"kind":"Endpoints","namespace":"default","name":"web","action":"configured"},
    {"kind":"EndpointSlice","namespace":"default","name":"web-abc","action":"unchanged"}])");
  EXPECT_EQ(renderApplyResults(results),
            "service/web created\nendpoints/web configured\n"
            "endpointslice.discovery.k8s.io/web-abc unchanged\n");
  Json deleted = Json::parse(R"([
    {"kind":"Service","namespace":"default","name":"web","action":"deleted"},
    {"kind":"EndpointSlice","namespace":"default","name":"web-abc","action":"deleted"}])");
  EXPECT_EQ(renderDeleteResults(deleted),
            "service \"web\" deleted\nendpointslice.discovery.k8s.io \"web-abc\" deleted\n");
}

TEST(CliResources, Aliases) {
  for (const char* a : {"svc", "service", "services", "SVC"})
    EXPECT_EQ(resolveResource(a)->kind, "Service") << a;
  for (const char* a : {"ep", "endpoints"}) EXPECT_EQ(resolveResource(a)->kind, "Endpoints") << a;
  for (const char* a : {"endpointslice", "endpointslices", "endpointslices.discovery.k8s.io"})
    EXPECT_EQ(resolveResource(a)->kind, "EndpointSlice") << a;
  EXPECT_FALSE(resolveResource("pods").has_value());
}

TEST(CliStats, Table) {
  Json stats = Json::parse(R"({"ok":true,
    "services":[{"namespace":"default","name":"web","port":"http","vip":"10.96.0.10",
                 "servicePort":80,"protocol":"TCP","svcId":3,
                 "packets":10,"bytes":600,"replyPackets":10,"replyBytes":900,"flows":2,
                 "backends":[{"ip":"10.0.1.2","port":8080,"backendId":7,"state":"active",
                              "packets":5,"bytes":300,"replyPackets":5,"replyBytes":450,"flows":1},
                             {"ip":"10.0.1.3","port":8080,"backendId":8,"state":"terminating",
                              "packets":5,"bytes":300,"replyPackets":5,"replyBytes":450,"flows":1}]},
                {"namespace":"kube-system","name":"dns","port":"","vip":"10.96.0.53",
                 "servicePort":53,"protocol":"UDP","packets":0,"bytes":0,"replyPackets":0,
                 "replyBytes":0,"flows":0,"backends":[]}],
    "drops":[{"reason":"no_backend","packets":3,"bytes":180},{"reason":"bad_packet","packets":0,"bytes":0}]})");
  EXPECT_EQ(renderStats(stats),
            "SERVICE                            PORT      VIP:PORT        PROTO   FLOWS   PACKETS  "
            " BYTES   REPLY-PACKETS   REPLY-BYTES\n"
            "default/web                        http      10.96.0.10:80   TCP     2       10       "
            " 600     10              900\n"
            "  -> 10.0.1.2:8080 (active)                                          1       5        "
            " 300     5               450\n"
            "  -> 10.0.1.3:8080 (terminating)                                     1       5        "
            " 300     5               450\n"
            "kube-system/dns                    <unset>   10.96.0.53:53   UDP     0       0        "
            " 0       0               0\n"
            "  -> <no backends>\n"
            "\n"
            "DROP REASON   PACKETS   BYTES\n"
            "no_backend    3         180\n"
            "bad_packet    0         0\n");
  EXPECT_EQ(renderStats(Json::parse(R"({"ok":true,"services":[],"drops":[]})")),
            "No service ports programmed.\n");
}

TEST(CliStats, ConntrackEventsAfterDrops) {
  Json stats = Json::parse(R"({"ok":true,
    "services":[{"namespace":"default","name":"web","port":"","vip":"10.96.0.10",
                 "servicePort":80,"protocol":"TCP","packets":0,"bytes":0,"replyPackets":0,
                 "replyBytes":0,"flows":0,"backends":[]}],
    "drops":[{"reason":"no_backend","packets":0,"bytes":0}],
    "conntrackEvents":{"orphaned":2,"relinked":17}})");
  const std::string out = renderStats(stats);
  EXPECT_NE(out.find("DROP REASON   PACKETS   BYTES\nno_backend    0         0\n\n"
                     "CONNTRACK EVENT   COUNT\norphaned          2\nrelinked          17\n"),
            std::string::npos)
      << out;
}

TEST(CliStatus, Layout) {
  Json status = Json::parse(R"({"ok":true,"version":"0.1.0","pid":123,"bpffs":"/sys/fs/bpf/svclb",
    "stateDir":"/var/lib/svclb","cgroup":"/sys/fs/cgroup/unified","netnsCookie":4096,
    "socketLb":"all",
    "interfaces":[{"name":"veth-a","ifindex":5,"attach":"tc-ingress","progId":42,
                   "egressProgId":43}],
    "programs":[{"name":"svclb_tc_pod_in","id":42,"type":"sched_cls"}],
    "cgroupLinks":[],
    "maps":[{"name":"ct_v2","type":"lru_hash","maxEntries":262144,"entries":12}],
    "sync":{"count":4,"lastDurationUs":310,"lastError":""}})");
  EXPECT_EQ(renderStatus(status),
            "Version:       0.1.0\n"
            "PID:           123\n"
            "BPF FS:        /sys/fs/bpf/svclb\n"
            "State Dir:     /var/lib/svclb\n"
            "Cgroup:        /sys/fs/cgroup/unified\n"
            "Socket LB:     all\n"
            "Netns Cookie:  4096\n"
            "Last Sync:     ok (took 310us, sync #4)\n"
            "Interfaces:\n"
            "  NAME     IFINDEX   ATTACH       PROG-ID   EGRESS-PROG-ID\n"
            "  veth-a   5         tc-ingress   42        43\n"
            "Programs:\n"
            "  ID    NAME              TYPE\n"
            "  42    svclb_tc_pod_in   sched_cls\n"
            "Cgroup Links: <none>\n"
            "Maps:\n"
            "  NAME    TYPE       ENTRIES   MAX-ENTRIES\n"
            "  ct_v2   lru_hash   12        262144\n");
  Json failed = Json::parse(
      R"({"cgroup":"","sync":{"count":2,"lastDurationUs":1500,"lastError":"map full"}})");
  std::string out = renderStatus(failed);
  EXPECT_NE(out.find("Last Sync:        failed (took 1.5ms, sync #2)\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Last Sync Error:  map full\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Cgroup:           <none>\n"), std::string::npos) << out;
}

TEST(CliStatus, DrainingNamesDeletedServicesOrTheirFrontends) {
  Json status = Json::parse(R"({"sync":{"count":1,"lastDurationUs":10,"lastError":""},
    "draining":{"heldEndpoints":3,"deletedServices":[
      {"namespace":"default","name":"web","port":"http","frontend":"10.96.0.10:80",
       "protocol":"TCP","heldEndpoints":1},
      {"namespace":"default","name":"web","port":"https","frontend":"10.96.0.10:443",
       "protocol":"TCP","heldEndpoints":1},
      {"namespace":"","name":"","port":"","frontend":"10.96.0.11:80","protocol":"TCP",
       "heldEndpoints":1}]}})");
  const std::string out = renderStatus(status);
  EXPECT_NE(out.find("Draining:   3 removed endpoint(s) held for their TCP connections "
                     "(deleted: 10.96.0.11:80/TCP, default/web)\n"),
            std::string::npos)
      << out;
  Json none = Json::parse(R"({"draining":{"heldEndpoints":0,"deletedServices":[]}})");
  EXPECT_NE(renderStatus(none).find("Draining:   0 removed endpoint(s) held for their TCP "
                                    "connections\n"),
            std::string::npos)
      << renderStatus(none);
}

// Stored objects today's validation refuses: counted, each named under the
// count in the value column; nothing when there is none (or an older daemon).
TEST(CliStatus, InvalidStoredObjectsAreListed) {
  Json status = Json::parse(R"({"sync":{"count":1,"lastDurationUs":10,"lastError":""},
    "invalidStored":["default: The Service \"api\" is invalid: spec.ports[0].port: bad",
                     "team: The Endpoints \"web\" is invalid: subsets[0]: bad"]})");
  const std::string out = renderStatus(status);
  const std::string pad(17, ' ');
  EXPECT_NE(
      out.find("Invalid Stored:  2 object(s) (svcctl apply a fixed manifest, or delete it)\n" +
               pad + "default: The Service \"api\" is invalid: spec.ports[0].port: bad\n" + pad +
               "team: The Endpoints"),
      std::string::npos)
      << out;
  EXPECT_EQ(renderStatus(Json::parse(R"({"invalidStored":[]})")).find("Invalid"),
            std::string::npos);
  EXPECT_EQ(renderStatus(Json::parse(R"({})")).find("Invalid"), std::string::npos);
}

TEST(CliTrace, Layout) {
  Json t = Json::parse(R"({"ok":true,
    "flow":{"src":"10.244.1.20:41001","dst":"10.96.0.30:80","protocol":"TCP"},
    "conntrack":{"map":"ct_est_v2","direction":"forward","natAddress":"10.244.1.11:8080",
                 "backendId":7,"svcId":3,"closing":true,"snat":false,"alive":true,"idleSeconds":1.25},
    "frontend":{"svcId":3,"algorithm":"maglev","affinity":false,"affinityTimeoutSeconds":0,
                "external":false,"localOnly":false,"noLocalEndpoints":false,"sourceRanges":false,
                "readySlots":2,"slots":2,"namespace":"default","name":"mag","port":"http"},
    "backends":[{"slot":1,"backendId":7,"address":"10.244.1.11:8080","state":"ready","takesNewFlows":true},
                {"slot":2,"backendId":8,"address":"10.244.1.12:8080","state":"terminating","takesNewFlows":false}],
    "verdict":{"action":"dnat","reason":"tracked flow: its conntrack entry names the backend",
               "backend":{"backendId":7,"address":"10.244.1.11:8080"}}})");
  EXPECT_EQ(renderTrace(t),
            "Flow:       10.244.1.20:41001 -> 10.96.0.30:80/TCP\n"
            "Service:    default/mag (port http), svc id 3\n"
            "Selection:  maglev\n"
            "Policy:     <none>\n"
            "Conntrack:  forward entry in ct_est_v2 -> 10.244.1.11:8080 (backend 7), idle 1.2s, "
            "alive, closing\n"
            "Verdict:    DNAT to 10.244.1.11:8080 (backend 7)\n"
            "Why:        tracked flow: its conntrack entry names the backend\n"
            "Backends:\n"
            "  SLOT   BACKEND-ID   ADDRESS            STATE         NEW-FLOWS\n"
            "  1      7            10.244.1.11:8080   ready         yes\n"
            "  2      8            10.244.1.12:8080   terminating   no\n");
  Json pass = Json::parse(R"({"flow":{"src":"10.0.0.1","dst":"10.96.0.99:80","protocol":"UDP"},
    "conntrack":null,"frontend":null,
    "verdict":{"action":"pass","reason":"no Service frontend"}})");
  std::string out = renderTrace(pass);
  EXPECT_NE(out.find("Service:    <none>\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Conntrack:  <no source port given>\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Verdict:    PASS (untouched)\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("Backends"), std::string::npos) << out;
}

}  // namespace
}  // namespace svclb::cli
