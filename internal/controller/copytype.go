package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// A Secret's type cannot change, and a copy in use must not be deleted to
// change it: when a source is replaced by one of the other pull-secret
// type, each copy keeps its type and gets the credential written in it.
// The two types hold the same credential: kubernetes.io/dockercfg the bare
// map X under .dockercfg, kubernetes.io/dockerconfigjson {"auths": X} under
// .dockerconfigjson (FIELD-NOTES, "Secret formats"); the kubelet reads the
// same keyring from either.

// pullSecretTypes are the types a credential can be written in.
var pullSecretTypes = []corev1.SecretType{corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg}

// errNoConversion: the credential cannot be written in that type.
var errNoConversion = errors.New("a pull secret's credential can be written only as kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg")

// credentialAs returns the data of a pull secret of type from written as
// a Secret of type to. The registry map is carried over byte for byte;
// fields of a config.json beside "auths", which the kubelet ignores, are
// dropped. Errors never quote the data.
func credentialAs(from corev1.SecretType, data map[string][]byte, to corev1.SecretType) (map[string][]byte, error) {
	var auths []byte
	switch from {
	case corev1.SecretTypeDockerConfigJson:
		var cfg struct {
			Auths json.RawMessage `json:"auths"`
		}
		if err := json.Unmarshal(data[corev1.DockerConfigJsonKey], &cfg); err != nil || len(cfg.Auths) == 0 {
			return nil, fmt.Errorf("%s is not a config.json with auths", corev1.DockerConfigJsonKey)
		}
		auths = cfg.Auths
	case corev1.SecretTypeDockercfg:
		auths = data[corev1.DockerConfigKey]
		if !json.Valid(auths) {
			return nil, fmt.Errorf("%s is not JSON", corev1.DockerConfigKey)
		}
	default:
		return nil, errNoConversion
	}
	switch to {
	case corev1.SecretTypeDockerConfigJson:
		var b bytes.Buffer
		b.WriteString(`{"auths":`)
		b.Write(bytes.TrimSpace(auths))
		b.WriteString(`}`)
		return map[string][]byte{corev1.DockerConfigJsonKey: b.Bytes()}, nil
	case corev1.SecretTypeDockercfg:
		return map[string][]byte{corev1.DockerConfigKey: bytes.Clone(bytes.TrimSpace(auths))}, nil
	}
	return nil, errNoConversion
}

// hashesIn returns, for each pull-secret type, the digest a copy of that
// type holding the source's credential has: the source's own for its
// type, the converted data's for the other.
func hashesIn(source *corev1.Secret) map[string]string {
	out := map[string]string{string(source.Type): dataHash(source.Type, source.Data)}
	for _, t := range pullSecretTypes {
		if t == source.Type {
			continue
		}
		if data, err := credentialAs(source.Type, source.Data, t); err == nil {
			out[string(t)] = dataHash(t, data)
		}
	}
	return out
}
