// svclb-k8sload: creates N Services without a selector and one EndpointSlice
// each (E ready IPv4 endpoints, label kubernetes.io/service-name, one TCP
// port) through the apiserver with client-go, from C workers, and prints one
// JSON line: how many were created and the wall time from the first request
// to the last create returning. Bench-only (bench/k8s/scale.sh); not part of
// svclb.
//
//	svclb-k8sload --kubeconfig F [--namespace NS] [--services N] [--endpoints E]
//	              [--concurrency C] [--timeout S]
//
// Service i is "s<i>" (ClusterIP allocated by the apiserver, port 80/TCP
// "http"); its slice "s<i>-1" holds 10.128.0.0/10 + i*E + j (j < E), port
// 8080/TCP "http". Client-side rate limiting is off: the apiserver (its
// max-requests-inflight and priority and fairness) is the only limit.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/flowcontrol"
)

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "svclb-k8sload: "+format+"\n", a...)
	os.Exit(1)
}

// endpointIP: the j-th endpoint of Service i, in 10.128.0.0/10.
func endpointIP(i, j, e int) string {
	n := (uint32(10)<<24 | uint32(128)<<16) + uint32(i*e+j+1)
	return fmt.Sprintf("%d.%d.%d.%d", n>>24, n>>16&255, n>>8&255, n&255)
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of a user that may create Services and EndpointSlices")
	ns := flag.String("namespace", "scale", "namespace (created if missing)")
	n := flag.Int("services", 10000, "Services to create")
	e := flag.Int("endpoints", 10, "ready endpoints per Service (one EndpointSlice)")
	c := flag.Int("concurrency", 16, "parallel workers")
	timeout := flag.Duration("timeout", 30*time.Minute, "give up after this long")
	epBase := flag.String("endpoint-base", "", "every slice holds the same endpoints: this IPv4 address + j (j < E)")
	lastBase := flag.String("last-endpoint-base", "", "the last Service's slice instead holds this IPv4 address + j: endpoints of its own")
	udpPort := flag.Int("udp-port", 0, "also a UDP port \"dns\" on every Service (0: none)")
	udpTarget := flag.Int("udp-target-port", 5353, "the UDP port's endpoint port")
	del := flag.Bool("delete", false, "delete s0..s<N-1> and their slices instead of creating them")
	flag.Parse()
	if *kubeconfig == "" || *n < 1 || *e < 1 || *e > 1000 || *c < 1 || *c > 256 || *n**e >= 1<<22 ||
		*udpPort < 0 || *udpPort > 65535 || *udpTarget < 1 || *udpTarget > 65535 {
		fail("usage: --kubeconfig F [--namespace NS] [--services N>=1] [--endpoints 1..1000] [--concurrency 1..256] (N*E < 4194304)" +
			" [--endpoint-base IPv4] [--last-endpoint-base IPv4] [--udp-port 0..65535] [--udp-target-port 1..65535] [--delete]")
	}
	parseBase := func(flagName, v string) netip.Addr {
		if v == "" {
			return netip.Addr{}
		}
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			fail("--%s %q is not an IPv4 address", flagName, v)
		}
		return a
	}
	base := parseBase("endpoint-base", *epBase)
	last := parseBase("last-endpoint-base", *lastBase)
	epIP := func(i, j int) string {
		a := base
		if i == *n-1 && last.IsValid() {
			a = last
		}
		if !a.IsValid() {
			return endpointIP(i, j, *e)
		}
		for k := 0; k < j; k++ {
			a = a.Next()
		}
		return a.String()
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail("kubeconfig %s: %v", *kubeconfig, err)
	}
	cfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	cfg.UserAgent = "svclb-k8sload"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fail("client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	if *del {
		deleteAll(ctx, cs, *ns, *n, *c)
		return
	}
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: *ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		fail("create namespace %s: %v", *ns, err)
	}

	var next, services, slices atomic.Int64
	var firstErr atomic.Value
	ready := true
	proto := corev1.ProtocolTCP
	portName := "http"
	port := int32(8080)
	svcPorts := []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}
	epPorts := []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}}
	if *udpPort > 0 {
		udp, dnsName, tport := corev1.ProtocolUDP, "dns", int32(*udpTarget)
		svcPorts = append(svcPorts, corev1.ServicePort{Name: dnsName, Port: int32(*udpPort), Protocol: udp, TargetPort: intstr.FromInt32(tport)})
		epPorts = append(epPorts, discoveryv1.EndpointPort{Name: &dnsName, Port: &tport, Protocol: &udp})
	}
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= *n || ctx.Err() != nil {
				return
			}
			name := fmt.Sprintf("s%d", i)
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: *ns},
				Spec: corev1.ServiceSpec{
					Type:  corev1.ServiceTypeClusterIP,
					Ports: svcPorts,
				},
			}
			if _, err := cs.CoreV1().Services(*ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
				firstErr.CompareAndSwap(nil, fmt.Sprintf("service %s/%s: %v", *ns, name, err))
				continue
			}
			services.Add(1)
			eps := make([]discoveryv1.Endpoint, *e)
			for j := range eps {
				eps[j] = discoveryv1.Endpoint{
					Addresses:  []string{epIP(i, j)},
					Conditions: discoveryv1.EndpointConditions{Ready: &ready},
				}
			}
			sl := &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{
					Name: name + "-1", Namespace: *ns,
					Labels: map[string]string{discoveryv1.LabelServiceName: name},
				},
				AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints:   eps,
				Ports:       epPorts,
			}
			if _, err := cs.DiscoveryV1().EndpointSlices(*ns).Create(ctx, sl, metav1.CreateOptions{}); err != nil {
				firstErr.CompareAndSwap(nil, fmt.Sprintf("endpointslice %s/%s-1: %v", *ns, name, err))
				continue
			}
			slices.Add(1)
		}
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *c; w++ {
		wg.Add(1)
		go func() { defer wg.Done(); work() }()
	}
	wg.Wait()
	secs := time.Since(t0).Seconds()
	out := map[string]any{
		"services": services.Load(), "endpointslices": slices.Load(), "endpoints_per_slice": *e,
		"concurrency": *c, "wall_s": secs, "objects_per_s": float64(services.Load()+slices.Load()) / secs,
		"end_unix_ns": time.Now().UnixNano(),
	}
	if v := firstErr.Load(); v != nil {
		out["first_error"] = v
	}
	json.NewEncoder(os.Stdout).Encode(out)
	if services.Load() != int64(*n) || slices.Load() != int64(*n) {
		os.Exit(1)
	}
}

// deleteAll removes Services s0..s<n-1> and their slices (a missing one is
// no error) from c workers and prints one JSON line like the create mode.
func deleteAll(ctx context.Context, cs *kubernetes.Clientset, ns string, n, c int) {
	var next, deleted atomic.Int64
	var firstErr atomic.Value
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				name := fmt.Sprintf("s%d", i)
				err := cs.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{})
				if err == nil || apierrors.IsNotFound(err) {
					err = cs.DiscoveryV1().EndpointSlices(ns).Delete(ctx, name+"-1", metav1.DeleteOptions{})
				}
				if err != nil && !apierrors.IsNotFound(err) {
					firstErr.CompareAndSwap(nil, fmt.Sprintf("delete %s/%s: %v", ns, name, err))
					continue
				}
				deleted.Add(1)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(t0).Seconds()
	out := map[string]any{"deleted": deleted.Load(), "wall_s": secs, "end_unix_ns": time.Now().UnixNano()}
	if v := firstErr.Load(); v != nil {
		out["first_error"] = v
	}
	json.NewEncoder(os.Stdout).Encode(out)
	if deleted.Load() != int64(n) {
		os.Exit(1)
	}
}
