// Command psa-check reads Kubernetes manifests (a multi-document YAML stream on
// stdin, as `helm template` prints it) and checks every pod template in them
// against a Pod Security Standard level with the Kubernetes project's own
// evaluator (k8s.io/pod-security-admission), the code the API server's admission
// plugin runs. A hand-written list of rules would drift from the standard; this
// cannot. It prints one line per violation and exits 1 when there is any.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

// podTemplate is the part of a workload the standard applies to.
type podTemplate struct {
	name string
	meta metav1.ObjectMeta
	spec corev1.PodSpec
}

func main() {
	levelName := flag.String("level", "restricted", "baseline or restricted")
	flag.Parse()
	level, err := api.ParseLevel(*levelName)
	if err != nil {
		fail(err)
	}
	templates, err := readPodTemplates(os.Stdin)
	if err != nil {
		fail(err)
	}
	if len(templates) == 0 {
		fail(errors.New("no pod template in the input"))
	}
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		fail(err)
	}
	wanted := api.LevelVersion{Level: level, Version: api.LatestVersion()}
	violations := 0
	for _, t := range templates {
		for _, result := range evaluator.EvaluatePod(wanted, &t.meta, &t.spec) {
			if !result.Allowed {
				violations++
				fmt.Printf("%s: %s: %s\n", t.name, result.ForbiddenReason, result.ForbiddenDetail)
			}
		}
	}
	if violations > 0 {
		os.Exit(1)
	}
	fmt.Printf("%d pod template(s) meet the %s Pod Security Standard\n", len(templates), level)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "psa-check:", err)
	os.Exit(2)
}

// readPodTemplates collects the pod templates of Pods, Deployments, StatefulSets,
// DaemonSets, ReplicaSets, Jobs and CronJobs; other kinds are ignored.
func readPodTemplates(in io.Reader) ([]podTemplate, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(in))
	var found []podTemplate
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return found, nil
		}
		if err != nil {
			return nil, err
		}
		var head metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return nil, err
		}
		template, ok, err := podTemplateOf(head.Kind, doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", head.Kind, err)
		}
		if ok {
			found = append(found, template)
		}
	}
}

func podTemplateOf(kind string, doc []byte) (podTemplate, bool, error) {
	var (
		name string
		meta metav1.ObjectMeta
		spec corev1.PodSpec
		err  error
	)
	switch kind {
	case "Pod":
		var o corev1.Pod
		err = yaml.UnmarshalStrict(doc, &o)
		name, meta, spec = o.Name, o.ObjectMeta, o.Spec
	case "Deployment":
		var o appsv1.Deployment
		err = yaml.UnmarshalStrict(doc, &o)
		name, meta, spec = o.Name, o.Spec.Template.ObjectMeta, o.Spec.Template.Spec
	case "StatefulSet":
		var o appsv1.StatefulSet
		err = yaml.UnmarshalStrict(doc, &o)
		name, meta, spec = o.Name, o.Spec.Template.ObjectMeta, o.Spec.Template.Spec
	case "DaemonSet":
		var o appsv1.DaemonSet
		err = yaml.UnmarshalStrict(doc, &o)
		name, meta, spec = o.Name, o.Spec.Template.ObjectMeta, o.Spec.Template.Spec
	case "ReplicaSet":
		var o appsv1.ReplicaSet
		err = yaml.UnmarshalStrict(doc, &o)
		name, meta, spec = o.Name, o.Spec.Template.ObjectMeta, o.Spec.Template.Spec
	case "Job":
		var o batchv1.Job
		err = yaml.UnmarshalStrict(doc, &o)
		name, meta, spec = o.Name, o.Spec.Template.ObjectMeta, o.Spec.Template.Spec
	case "CronJob":
		var o batchv1.CronJob
		err = yaml.UnmarshalStrict(doc, &o)
		name, meta, spec = o.Name, o.Spec.JobTemplate.Spec.Template.ObjectMeta, o.Spec.JobTemplate.Spec.Template.Spec
	default:
		return podTemplate{}, false, nil
	}
	if err != nil {
		return podTemplate{}, false, err
	}
	return podTemplate{name: kind + "/" + name, meta: meta, spec: spec}, true, nil
}
