package deploy

import (
	"os"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/pullsecrets/pullsecrets/test/internal/deploytest"
)

const imageRepository = "ghcr.io/pullsecrets/pullsecrets-controller"

// controllerImages returns the images of the controller Deployment's containers.
func controllerImages(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetName() != "pullsecrets-controller" {
			continue
		}
		containers, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		if err != nil {
			t.Fatal(err)
		}
		var images []string
		for _, c := range containers {
			images = append(images, c.(map[string]any)["image"].(string))
		}
		return images
	}
	t.Fatal("no pullsecrets-controller Deployment")
	return nil
}

// TestImageReferencesAgree: kustomize and Helm deploy the same image, the
// chart's appVersion from the chart's repository, never an implicit latest;
// the chart takes a digest instead.
func TestImageReferencesAgree(t *testing.T) {
	g := NewWithT(t)
	raw, err := os.ReadFile("../../charts/pullsecrets/Chart.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	g.Expect(yaml.Unmarshal(raw, &chart)).To(Succeed())
	g.Expect(chart.AppVersion).NotTo(BeEmpty())
	want := imageRepository + ":" + chart.AppVersion

	g.Expect(controllerImages(t, deploytest.Decode(t, deploytest.Kustomize(t, "config/default")))).To(Equal([]string{want}),
		"config/manager/kustomization.yaml must tag the image with the chart's appVersion")

	if testing.Short() {
		t.Skip("the Helm half needs bin/helm (make tools)")
	}
	g.Expect(controllerImages(t, deploytest.Decode(t, deploytest.HelmTemplate(t, "pullsecrets-system")))).To(Equal([]string{want}))
	digest := "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	g.Expect(controllerImages(t, deploytest.Decode(t, deploytest.HelmTemplate(t, "pullsecrets-system", "--set", "image.digest="+digest)))).
		To(Equal([]string{imageRepository + "@" + digest}))
}
