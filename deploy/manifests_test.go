package deploy_test

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// wantNamespace is where gslb runs in both clusters (see base/namespace.yaml
// for why not the seed's istio-injected "ecommerce").
const wantNamespace = "gslb"

// forEachOverlay runs f as a subtest per overlay.
func forEachOverlay(t *testing.T, f func(t *testing.T, r *rendered)) {
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) { f(t, render(t, o)) })
	}
}

// TestOverlaysRenderAndDecodeStrictly renders each overlay and checks that
// every object decoded strictly (render fails otherwise), that the expected
// set of objects is there, and that names and labels are valid API values.
func TestOverlaysRenderAndDecodeStrictly(t *testing.T) {
	forEachOverlay(t, func(t *testing.T, r *rendered) {
		want := map[string]int{"Namespace": 1, "ServiceAccount": 1, "ConfigMap": 1, "Service": 3,
			"Deployment": 1, "PodDisruptionBudget": 1, "NetworkPolicy": 1, "ServiceMonitor": 1}
		got := map[string]int{}
		for _, o := range r.objects {
			got[o.kind]++
		}
		for k, n := range want {
			if got[k] != n {
				t.Errorf("%d %s objects, want %d (rendered: %v)", got[k], k, n, r.kinds())
			}
		}
		if len(r.secrets) != 0 {
			t.Errorf("a Secret is rendered: the admin token must not live in git")
		}
		for _, o := range r.objects {
			if errs := validation.IsDNS1123Subdomain(o.name); len(errs) > 0 {
				t.Errorf("%s: invalid name: %v", o, errs)
			}
			if o.kind == "Namespace" {
				continue
			}
			if o.namespace != wantNamespace {
				t.Errorf("%s: namespace %q, want %q", o, o.namespace, wantNamespace)
			}
		}
		d := r.deployment(t)
		checkLabels(t, "Deployment", d.Labels)
		checkLabels(t, "pod template", d.Spec.Template.Labels)
		if d.Spec.Template.Labels["gslb.dev/region"] != r.overlay {
			t.Errorf("pod label gslb.dev/region = %q, want %q", d.Spec.Template.Labels["gslb.dev/region"], r.overlay)
		}
	})
}

func checkLabels(t *testing.T, what string, m map[string]string) {
	t.Helper()
	for k, v := range m {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			t.Errorf("%s label key %q: %v", what, k, errs)
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("%s label %s=%q: %v", what, k, v, errs)
		}
	}
}

// TestNamespaceEnforcesRestricted checks the namespace keeps Istio out and
// enforces the restricted Pod Security Standard.
func TestNamespaceEnforcesRestricted(t *testing.T) {
	forEachOverlay(t, func(t *testing.T, r *rendered) {
		if len(r.namespaces) != 1 || r.namespaces[0].Name != wantNamespace {
			t.Fatalf("want the Namespace %q, got %d namespaces", wantNamespace, len(r.namespaces))
		}
		l := r.namespaces[0].Labels
		if l["pod-security.kubernetes.io/enforce"] != "restricted" {
			t.Errorf("namespace does not enforce the restricted Pod Security Standard: %v", l)
		}
		if l["istio-injection"] != "disabled" {
			t.Errorf("namespace label istio-injection = %q, want disabled", l["istio-injection"])
		}
	})
}

// gslbContainer returns the container named gslb.
func gslbContainer(t *testing.T, d *appsv1.Deployment) *corev1.Container {
	t.Helper()
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == "gslb" {
			return c
		}
	}
	t.Fatalf("Deployment %s has no container named gslb", d.Name)
	return nil
}

// containerPort finds a container port by name.
func containerPort(c *corev1.Container, name string) (corev1.ContainerPort, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p, true
		}
	}
	return corev1.ContainerPort{}, false
}

// resolvePort turns a probe or Service target port (number or name) into the
// container port it means.
func resolvePort(c *corev1.Container, p intstr.IntOrString, proto corev1.Protocol) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if cp.Protocol == "" {
			cp.Protocol = corev1.ProtocolTCP
		}
		if cp.Protocol != proto {
			continue
		}
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

// TestDeploymentHardening asserts what the Deployment promises: replicas and
// spreading, probes, resources and the restricted security context.
func TestDeploymentHardening(t *testing.T) {
	forEachOverlay(t, func(t *testing.T, r *rendered) {
		d := r.deployment(t)
		spec := d.Spec.Template.Spec
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Errorf("replicas %s, want at least 2", ptrString(d.Spec.Replicas))
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Fatalf("selector %v does not match the pod labels %v (err %v)", d.Spec.Selector, d.Spec.Template.Labels, err)
		}

		// Anti-affinity: never two gslb pods on one node.
		var antiOK bool
		if spec.Affinity != nil && spec.Affinity.PodAntiAffinity != nil {
			for _, term := range spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				s, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
				if err == nil && !s.Empty() && term.TopologyKey == "kubernetes.io/hostname" && s.Matches(labels.Set(d.Spec.Template.Labels)) {
					antiOK = true
				}
			}
		}
		if !antiOK {
			t.Errorf("no required pod anti-affinity on kubernetes.io/hostname selecting the gslb pods")
		}

		c := gslbContainer(t, d)
		if strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
			t.Errorf("image %q is not pinned to a tag", c.Image)
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, okReq := c.Resources.Requests[res]
			lim, okLim := c.Resources.Limits[res]
			if !okReq || !okLim {
				t.Errorf("%s: request and limit both required (requests %v, limits %v)", res, c.Resources.Requests, c.Resources.Limits)
				continue
			}
			if req.Cmp(lim) > 0 {
				t.Errorf("%s request %s above limit %s", res, req.String(), lim.String())
			}
		}

		// Probes on the admin port.
		admin, ok := containerPort(c, "admin")
		if !ok {
			t.Fatalf("no container port named admin")
		}
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
			path  string
		}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s probe: want an httpGet probe", p.name)
				continue
			}
			if p.probe.HTTPGet.Path != p.path {
				t.Errorf("%s probe path %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
			}
			if cp, ok := resolvePort(c, p.probe.HTTPGet.Port, corev1.ProtocolTCP); !ok || cp.ContainerPort != admin.ContainerPort {
				t.Errorf("%s probe port %s is not the admin port %d", p.name, p.probe.HTTPGet.Port.String(), admin.ContainerPort)
			}
		}

		// DNS on 53 over both transports.
		for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
			if _, ok := resolvePort(c, intstr.FromInt32(53), proto); !ok {
				t.Errorf("no container port 53/%s", proto)
			}
		}

		// Security context, container settings overriding the pod's.
		psc := spec.SecurityContext
		if psc == nil {
			psc = &corev1.PodSecurityContext{}
		}
		sc := c.SecurityContext
		if sc == nil {
			t.Fatalf("container has no securityContext")
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("allowPrivilegeEscalation is not false")
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("container is privileged")
		}
		runAsNonRoot := firstBool(sc.RunAsNonRoot, psc.RunAsNonRoot)
		if runAsNonRoot == nil || !*runAsNonRoot {
			t.Errorf("runAsNonRoot is not true")
		}
		if uid := firstInt64(sc.RunAsUser, psc.RunAsUser); uid == nil || *uid == 0 {
			t.Errorf("runAsUser %s: want an explicit non-zero uid", ptrString(uid))
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("capabilities.drop %v, want [ALL]", sc.Capabilities)
		} else if !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_BIND_SERVICE"}) {
			t.Errorf("capabilities.add %v, want exactly [NET_BIND_SERVICE]", sc.Capabilities.Add)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("seccompProfile %v, want RuntimeDefault", seccomp)
		}
		// A non-root process cannot use NET_BIND_SERVICE from the bounding
		// set alone; the pod must lower the unprivileged port range to 53.
		var sysctlOK bool
		for _, s := range psc.Sysctls {
			if s.Name == "net.ipv4.ip_unprivileged_port_start" && s.Value == "53" {
				sysctlOK = true
			}
		}
		if !sysctlOK {
			t.Errorf("pod lacks sysctl net.ipv4.ip_unprivileged_port_start=53: uid %s could not bind port 53", ptrString(psc.RunAsUser))
		}
		if spec.HostNetwork {
			t.Errorf("hostNetwork is set")
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("the service account token is mounted; gslb never calls the API")
		}
		if d.Spec.Template.Annotations["sidecar.istio.io/inject"] != "false" {
			t.Errorf("pod does not opt out of Istio sidecar injection")
		}
	})
}

// ptrString formats an optional value for messages.
func ptrString[T any](p *T) string {
	if p == nil {
		return "<unset>"
	}
	return fmt.Sprint(*p)
}

func firstBool(a, b *bool) *bool {
	if a != nil {
		return a
	}
	return b
}

func firstInt64(a, b *int64) *int64 {
	if a != nil {
		return a
	}
	return b
}

// TestServices checks the DNS Service (LoadBalancer, 53 UDP+TCP, source
// addresses preserved), the admin and proxy Services, and that every
// Service selects the gslb pods and targets real container ports.
func TestServices(t *testing.T) {
	forEachOverlay(t, func(t *testing.T, r *rendered) {
		d := r.deployment(t)
		c := gslbContainer(t, d)
		for _, s := range r.services {
			if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("Service %s selector %v does not select the gslb pods", s.Name, s.Spec.Selector)
			}
			for _, p := range s.Spec.Ports {
				proto := p.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				if _, ok := resolvePort(c, p.TargetPort, proto); !ok {
					t.Errorf("Service %s port %s targets %s/%s, not a container port", s.Name, p.Name, p.TargetPort.String(), proto)
				}
			}
		}

		dnsSvc := r.service(t, "gslb-dns")
		if dnsSvc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			t.Errorf("gslb-dns type %q, want LoadBalancer", dnsSvc.Spec.Type)
		}
		if dnsSvc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
			t.Errorf("gslb-dns externalTrafficPolicy %q, want Local (resolver source addresses)", dnsSvc.Spec.ExternalTrafficPolicy)
		}
		protos := map[corev1.Protocol]bool{}
		for _, p := range dnsSvc.Spec.Ports {
			if p.Port == 53 {
				protos[p.Protocol] = true
			}
		}
		if !protos[corev1.ProtocolUDP] || !protos[corev1.ProtocolTCP] {
			t.Errorf("gslb-dns serves port 53 over %v, want UDP and TCP", protos)
		}

		for _, name := range []string{"gslb-admin", "gslb-proxy"} {
			s := r.service(t, name)
			if s.Spec.Type != corev1.ServiceTypeClusterIP && s.Spec.Type != "" {
				t.Errorf("%s type %q: must stay inside the cluster (ClusterIP)", name, s.Spec.Type)
			}
		}
		admin := r.service(t, "gslb-admin")
		if len(admin.Spec.Ports) != 1 {
			t.Fatalf("gslb-admin has %d ports, want 1", len(admin.Spec.Ports))
		}
		if cp, ok := resolvePort(c, admin.Spec.Ports[0].TargetPort, corev1.ProtocolTCP); !ok || cp.Name != "admin" {
			t.Errorf("gslb-admin does not target the admin container port")
		}
	})
}

// TestPodDisruptionBudget checks the PDB covers the pods and lets a drain
// proceed without ever taking all of them.
func TestPodDisruptionBudget(t *testing.T) {
	forEachOverlay(t, func(t *testing.T, r *rendered) {
		d := r.deployment(t)
		if len(r.pdbs) != 1 {
			t.Fatalf("want 1 PodDisruptionBudget, got %d", len(r.pdbs))
		}
		pdb := r.pdbs[0]
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("PDB selector %v does not select the gslb pods", pdb.Spec.Selector)
		}
		replicas := int(*d.Spec.Replicas)
		var allowed int
		switch {
		case pdb.Spec.MaxUnavailable != nil:
			v, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, replicas, false)
			if err != nil {
				t.Fatalf("maxUnavailable: %v", err)
			}
			allowed = v
		case pdb.Spec.MinAvailable != nil:
			v, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, replicas, true)
			if err != nil {
				t.Fatalf("minAvailable: %v", err)
			}
			allowed = replicas - v
		default:
			t.Fatalf("PDB sets neither maxUnavailable nor minAvailable")
		}
		if allowed < 1 || allowed >= replicas {
			t.Errorf("PDB allows %d of %d pods down: want at least 1 (drains proceed) and fewer than all", allowed, replicas)
		}
	})
}

// TestNetworkPolicy checks DNS is open to all, the admin port only to the
// monitoring namespace, and that no rule opens anything else to everyone.
func TestNetworkPolicy(t *testing.T) {
	forEachOverlay(t, func(t *testing.T, r *rendered) {
		d := r.deployment(t)
		c := gslbContainer(t, d)
		admin, _ := containerPort(c, "admin")
		if len(r.netpols) != 1 {
			t.Fatalf("want 1 NetworkPolicy, got %d", len(r.netpols))
		}
		np := r.netpols[0]
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Fatalf("NetworkPolicy podSelector %v does not select the gslb pods", np.Spec.PodSelector)
		}
		if !slices.Contains(np.Spec.PolicyTypes, "Ingress") {
			t.Errorf("policyTypes %v lack Ingress", np.Spec.PolicyTypes)
		}
		openToAll := map[string]bool{}
		adminFrom := 0
		for i, rule := range np.Spec.Ingress {
			if len(rule.Ports) == 0 {
				t.Errorf("ingress rule %d allows every port", i)
			}
			for _, p := range rule.Ports {
				if p.Port == nil {
					t.Errorf("ingress rule %d allows every port of a protocol", i)
					continue
				}
				proto := corev1.ProtocolTCP
				if p.Protocol != nil {
					proto = *p.Protocol
				}
				cp, ok := resolvePort(c, *p.Port, proto)
				if !ok {
					t.Errorf("ingress rule %d port %s/%s is no container port", i, p.Port.String(), proto)
					continue
				}
				if len(rule.From) == 0 {
					openToAll[cp.Name] = true
				}
				if cp.ContainerPort == admin.ContainerPort {
					for _, peer := range rule.From {
						if peer.IPBlock != nil || peer.PodSelector != nil || peer.NamespaceSelector == nil ||
							peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" ||
							len(peer.NamespaceSelector.MatchLabels) != 1 || len(peer.NamespaceSelector.MatchExpressions) != 0 {
							t.Errorf("ingress rule %d admits %v to the admin port: only the monitoring namespace may", i, peer)
						} else {
							adminFrom++
						}
					}
				}
			}
		}
		if !openToAll["dns-udp"] || !openToAll["dns-tcp"] {
			t.Errorf("DNS is not open to all sources over UDP and TCP (open: %v)", openToAll)
		}
		for name := range openToAll {
			if name != "dns-udp" && name != "dns-tcp" {
				t.Errorf("port %s is open to all sources", name)
			}
		}
		if adminFrom == 0 {
			t.Errorf("the monitoring namespace cannot reach the admin port: metrics would not be scraped")
		}
	})
}

// TestServiceMonitor checks the ServiceMonitor scrapes /metrics on the admin
// Service's named port, and is picked up by the seed's Prometheus release.
func TestServiceMonitor(t *testing.T) {
	forEachOverlay(t, func(t *testing.T, r *rendered) {
		if len(r.serviceMonitors) != 1 {
			t.Fatalf("want 1 ServiceMonitor, got %d", len(r.serviceMonitors))
		}
		sm := r.serviceMonitors[0]
		if sm.Labels["release"] != "prometheus" {
			t.Errorf("ServiceMonitor label release=%q: kube-prometheus-stack release \"prometheus\" would ignore it", sm.Labels["release"])
		}
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Fatalf("ServiceMonitor selector %v: %v", sm.Spec.Selector, err)
		}
		var matched []*corev1.Service
		for _, s := range r.services {
			if sel.Matches(labels.Set(s.Labels)) {
				matched = append(matched, s)
			}
		}
		if len(matched) != 1 || matched[0].Name != "gslb-admin" {
			t.Fatalf("ServiceMonitor selects %d Services, want exactly gslb-admin", len(matched))
		}
		if len(sm.Spec.Endpoints) == 0 {
			t.Fatalf("ServiceMonitor has no endpoints")
		}
		for _, ep := range sm.Spec.Endpoints {
			if ep.Path != "/metrics" {
				t.Errorf("endpoint path %q, want /metrics", ep.Path)
			}
			var found bool
			for _, p := range matched[0].Spec.Ports {
				found = found || p.Name == ep.Port
			}
			if !found {
				t.Errorf("endpoint port %q is not a named port of gslb-admin", ep.Port)
			}
		}
	})
}

// TestMountsMatchConfig ties the Deployment to the config it carries: the
// -config path is a mounted ConfigMap key, admin.token_file a mounted Secret
// key, state_file on a writable emptyDir, and the listeners on the
// container's ports.
func TestMountsMatchConfig(t *testing.T) {
	forEachOverlay(t, func(t *testing.T, r *rendered) {
		d := r.deployment(t)
		c := gslbContainer(t, d)
		cfgPath := configFlag(t, c.Args)
		vol, mount := volumeAt(t, d, c, path.Dir(cfgPath))
		if vol.ConfigMap == nil {
			t.Fatalf("%s is not a ConfigMap volume", path.Dir(cfgPath))
		}
		cm := r.configMap(vol.ConfigMap.Name)
		if cm == nil {
			t.Fatalf("the config volume names ConfigMap %q, which is not rendered (kustomize did not rewrite the generated name?)", vol.ConfigMap.Name)
		}
		data, ok := cm.Data[path.Base(cfgPath)]
		if !ok {
			t.Fatalf("ConfigMap %s has no key %q", cm.Name, path.Base(cfgPath))
		}
		if !mount.ReadOnly {
			t.Errorf("config mount is writable")
		}
		cfg := parseGslbConfig(t, []byte(data))

		tokenFile := cfg.str(t, "admin", "token_file")
		vol, _ = volumeAt(t, d, c, path.Dir(tokenFile))
		if vol.Secret == nil {
			t.Fatalf("admin.token_file %s is not on a Secret volume", tokenFile)
		}
		if vol.Secret.Optional != nil && *vol.Secret.Optional {
			t.Errorf("the admin token Secret is optional: pods would start without a token")
		}
		if !secretHasPath(vol.Secret, path.Base(tokenFile)) {
			t.Errorf("Secret volume does not project %q", path.Base(tokenFile))
		}

		stateFile := cfg.str(t, "state_file")
		vol, mount = volumeAt(t, d, c, path.Dir(stateFile))
		if vol.EmptyDir == nil || mount.ReadOnly {
			t.Errorf("state_file %s is not on a writable emptyDir", stateFile)
		}

		for _, l := range cfg.list(t, "dns", "listen") {
			for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
				if _, ok := resolvePort(c, intstr.FromInt32(listenPort(t, l)), proto); !ok {
					t.Errorf("dns.listen %s: no container port %d/%s", l, listenPort(t, l), proto)
				}
			}
		}
		if p, _ := containerPort(c, "admin"); listenPort(t, cfg.str(t, "admin", "listen")) != p.ContainerPort {
			t.Errorf("admin.listen %s is not the admin container port %d", cfg.str(t, "admin", "listen"), p.ContainerPort)
		}
		if host := listenHost(t, cfg.str(t, "admin", "listen")); host != "" && host != "0.0.0.0" && host != "::" {
			t.Errorf("admin.listen host %q: kubelet probes would not reach it", host)
		}
		for _, l := range cfg.list(t, "proxy", "listen") {
			if p, _ := containerPort(c, "proxy"); listenPort(t, l) != p.ContainerPort {
				t.Errorf("proxy.listen %s is not the proxy container port %d", l, p.ContainerPort)
			}
		}
	})
}

// configFlag returns the value of -config in args, which must start with
// the serve subcommand.
func configFlag(t *testing.T, args []string) string {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("container args %q do not start with serve", args)
	}
	for i, a := range args {
		if (a == "-config" || a == "--config") && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "-config="); ok {
			return v
		}
	}
	t.Fatalf("container args %q have no -config", args)
	return ""
}

// volumeAt returns the volume and mount of container c mounted at dir.
func volumeAt(t *testing.T, d *appsv1.Deployment, c *corev1.Container, dir string) (*corev1.Volume, corev1.VolumeMount) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) != path.Clean(dir) {
			continue
		}
		if m.SubPath != "" {
			t.Errorf("mount %s uses subPath: updates would not reach it", m.MountPath)
		}
		for i := range d.Spec.Template.Spec.Volumes {
			if v := &d.Spec.Template.Spec.Volumes[i]; v.Name == m.Name {
				return v, m
			}
		}
		t.Fatalf("mount %s names volume %q, which does not exist", m.MountPath, m.Name)
	}
	t.Fatalf("nothing is mounted at %s", dir)
	return nil, corev1.VolumeMount{}
}

func secretHasPath(s *corev1.SecretVolumeSource, file string) bool {
	if len(s.Items) == 0 {
		return true // every key becomes a file; the Secret is created by hand
	}
	for _, it := range s.Items {
		if it.Path == file {
			return true
		}
	}
	return false
}
