package registrycheck

import (
	"fmt"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
)

// image is an image reference normalised the way the kubelet does it, and
// the same reference in go-containerregistry's terms for the requests.
type image struct {
	// normalized is the full reference: "docker.io/library/nginx:latest".
	normalized string
	// domain is the registry as written in the reference ("docker.io"),
	// which is what people recognise in messages.
	domain string
	// repository is the path within the registry ("library/nginx").
	repository string
	// tag and digest; digest wins when both are set, as for the runtime.
	tag, digest string
	// ref is what go-containerregistry requests (for Docker Hub it talks to
	// index.docker.io).
	ref name.Reference
}

// what names the manifest asked for, for messages: "tag v1" or
// "manifest sha256:...".
func (im image) what() string {
	if im.digest != "" {
		return "manifest " + im.digest
	}
	return "tag " + im.tag
}

// parseImage normalises s like the kubelet's parsers.ParseImageName
// (pkg/util/parsers in kubernetes/kubernetes, which the image manager calls
// before looking up credentials): reference.ParseNormalizedNamed adds the
// docker.io domain and the library/ prefix, and a reference without tag or
// digest gets the tag "latest". insecure reports whether a registry host
// (as go-containerregistry names it) may be reached over plain HTTP.
func parseImage(s string, insecure func(host string) bool) (image, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return image{}, fmt.Errorf("parse image reference: %w", err)
	}
	im := image{
		domain:     reference.Domain(named),
		repository: reference.Path(named),
	}
	if tagged, ok := named.(reference.Tagged); ok {
		im.tag = tagged.Tag()
	}
	if digested, ok := named.(reference.Digested); ok {
		im.digest = digested.Digest().String()
	}
	if im.tag == "" && im.digest == "" {
		im.tag = "latest"
	}

	// The runtime pulls by digest when there is one; the tag is then only
	// a label (containerd and CRI-O both ignore it).
	target := named.Name() + ":" + im.tag
	im.normalized = target
	if im.digest != "" {
		target = named.Name() + "@" + im.digest
		im.normalized = named.String()
	}

	var opts []name.Option
	if registry, err := name.NewRegistry(im.domain); err == nil && insecure(registry.RegistryStr()) {
		opts = append(opts, name.Insecure)
	}
	if im.digest != "" {
		im.ref, err = name.NewDigest(target, opts...)
	} else {
		im.ref, err = name.NewTag(target, opts...)
	}
	if err != nil {
		return image{}, fmt.Errorf("parse image reference: %w", err)
	}
	return im, nil
}
