// Package deploy_test checks the deployable artefacts under deploy/: it
// renders the kustomize overlays in-process, decodes every object strictly
// into its Kubernetes API type, asserts the hardening the manifests promise,
// validates every gslb config they carry with the real `gslb check`, and
// reads the Dockerfile and the systemd unit.
//
// It is its own Go module so the Kubernetes dependencies stay out of gslb's
// go.mod; run it with deploy/check.sh.
package deploy_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// overlays are the clusters of the seed architecture, one overlay each.
var overlays = []string{"east", "west"}

// rendered holds one overlay's output, every object decoded into its type.
type rendered struct {
	overlay         string
	objects         []object
	namespaces      []*corev1.Namespace
	serviceAccounts []*corev1.ServiceAccount
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	services        []*corev1.Service
	deployments     []*appsv1.Deployment
	pdbs            []*policyv1.PodDisruptionBudget
	netpols         []*networkingv1.NetworkPolicy
	serviceMonitors []*monitoringv1.ServiceMonitor
}

// object is one rendered manifest.
type object struct {
	apiVersion, kind, name, namespace string
	yaml                              []byte
}

func (o object) String() string {
	return fmt.Sprintf("%s %s/%s", o.kind, o.namespace, o.name)
}

var (
	renderMu    sync.Mutex
	renderCache = map[string]*rendered{}
)

// render builds the named overlay with kustomize (as `kubectl apply -k`
// would) and decodes it strictly; results are cached per test binary.
func render(t *testing.T, overlay string) *rendered {
	t.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	if r, ok := renderCache[overlay]; ok {
		return r
	}
	dir := filepath.Join("kubernetes", "overlays", overlay)
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	r := &rendered{overlay: overlay}
	for _, res := range m.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatalf("%s: %s: marshal: %v", overlay, res.CurId(), err)
		}
		o := object{
			apiVersion: res.GetApiVersion(),
			kind:       res.GetKind(),
			name:       res.GetName(),
			namespace:  res.GetNamespace(),
			yaml:       y,
		}
		if err := r.add(o); err != nil {
			t.Fatalf("%s: %v", overlay, err)
		}
	}
	renderCache[overlay] = r
	return r
}

// add decodes o strictly into its API type: an unknown or misspelt field, a
// duplicate key or a wrong value type is an error, as it would be for the
// API server with strict field validation.
func (r *rendered) add(o object) error {
	var err error
	switch o.apiVersion + "/" + o.kind {
	case "v1/Namespace":
		r.namespaces, err = appendStrict(r.namespaces, o)
	case "v1/ServiceAccount":
		r.serviceAccounts, err = appendStrict(r.serviceAccounts, o)
	case "v1/ConfigMap":
		r.configMaps, err = appendStrict(r.configMaps, o)
	case "v1/Secret":
		r.secrets, err = appendStrict(r.secrets, o)
	case "v1/Service":
		r.services, err = appendStrict(r.services, o)
	case "apps/v1/Deployment":
		r.deployments, err = appendStrict(r.deployments, o)
	case "policy/v1/PodDisruptionBudget":
		r.pdbs, err = appendStrict(r.pdbs, o)
	case "networking.k8s.io/v1/NetworkPolicy":
		r.netpols, err = appendStrict(r.netpols, o)
	case "monitoring.coreos.com/v1/ServiceMonitor":
		r.serviceMonitors, err = appendStrict(r.serviceMonitors, o)
	default:
		return fmt.Errorf("%s: apiVersion %q kind %q has no strict decoder here; add one", o, o.apiVersion, o.kind)
	}
	if err != nil {
		return err
	}
	r.objects = append(r.objects, o)
	return nil
}

// appendStrict decodes o into a new T and appends it.
func appendStrict[T any](list []*T, o object) ([]*T, error) {
	v := new(T)
	if err := decodeStrict(o.yaml, v); err != nil {
		return list, fmt.Errorf("%s: %w", o, err)
	}
	return append(list, v), nil
}

// decodeStrict converts YAML to JSON and decodes it as the API server does
// with strict field validation: keys are case-sensitive (encoding/json would
// take "readOnlyRootFileSystem" for readOnlyRootFilesystem), and unknown or
// duplicate fields are errors.
func decodeStrict(y []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(y)
	if err != nil {
		return fmt.Errorf("yaml: %w", err)
	}
	strict, err := kjson.UnmarshalStrict(j, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if len(strict) > 0 {
		return fmt.Errorf("strict decode: %w", errors.Join(strict...))
	}
	return nil
}

// kinds lists the kinds rendered, sorted, for messages.
func (r *rendered) kinds() []string {
	var ks []string
	for _, o := range r.objects {
		ks = append(ks, o.kind)
	}
	sort.Strings(ks)
	return ks
}

// deployment returns the single gslb Deployment.
func (r *rendered) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	if len(r.deployments) != 1 {
		t.Fatalf("%s: want exactly 1 Deployment, got %d (%v)", r.overlay, len(r.deployments), r.kinds())
	}
	return r.deployments[0]
}

// service returns the Service with the given name.
func (r *rendered) service(t *testing.T, name string) *corev1.Service {
	t.Helper()
	for _, s := range r.services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("%s: no Service %q", r.overlay, name)
	return nil
}

// configMap returns the ConfigMap with the given name, or nil.
func (r *rendered) configMap(name string) *corev1.ConfigMap {
	for _, c := range r.configMaps {
		if c.Name == name {
			return c
		}
	}
	return nil
}
