package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// pki holds the paths of the key material the control plane runs with, plus
// the two values the kubeconfig needs inline.
type pki struct {
	dir string

	caCert, caKey         string // cluster CA (signs the serving cert; also the client CA)
	servingCert, servKey  string // kube-apiserver serving cert for 127.0.0.1/localhost
	serviceAccountKey     string // RSA key that signs and verifies service-account tokens
	tokenFile, adminToken string // --token-auth-file and the admin bearer token

	caPEM []byte
	token string
}

func newPKI(dir string) *pki {
	return &pki{
		dir:               dir,
		caCert:            filepath.Join(dir, "ca.crt"),
		caKey:             filepath.Join(dir, "ca.key"),
		servingCert:       filepath.Join(dir, "apiserver.crt"),
		servKey:           filepath.Join(dir, "apiserver.key"),
		serviceAccountKey: filepath.Join(dir, "sa.key"),
		tokenFile:         filepath.Join(dir, "tokens.csv"),
		adminToken:        filepath.Join(dir, "admin.token"),
	}
}

// ensure reuses the key material of a previous run when all of it is there
// (tokens already stored in etcd stay valid across a restart of the same
// state directory) and otherwise generates a fresh set.
func (p *pki) ensure() error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	if p.complete() {
		var err error
		if p.caPEM, err = os.ReadFile(p.caCert); err != nil {
			return err
		}
		tok, err := os.ReadFile(p.adminToken)
		if err != nil {
			return err
		}
		p.token = strings.TrimSpace(string(tok))
		if p.token != "" {
			return nil
		}
	}
	return p.generate()
}

func (p *pki) complete() bool {
	for _, f := range []string{p.caCert, p.caKey, p.servingCert, p.servKey, p.serviceAccountKey, p.tokenFile, p.adminToken} {
		if _, err := os.Stat(f); err != nil {
			return false
		}
	}
	return true
}

func (p *pki) generate() error {
	now := time.Now()
	notBefore := now.Add(-time.Hour) // tolerate small clock differences
	notAfter := now.AddDate(10, 0, 0)

	// Cluster CA. ECDSA P-256 keys are generated in microseconds, unlike RSA.
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "test-cluster-ca"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}

	// Serving certificate: valid for the loopback address the server listens
	// on and for the in-cluster names of the kubernetes Service (10.0.0.1 is
	// the first address of --service-cluster-ip-range).
	servKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	servTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{
			"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local",
		},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.0.0.1")},
	}
	servDER, err := x509.CreateCertificate(rand.Reader, servTmpl, caCert, servKey.Public(), caKey)
	if err != nil {
		return err
	}

	// Service-account signing key. RS256 is what every client expects of
	// a cluster's token issuer, so keep RSA here.
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}

	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	p.token = hex.EncodeToString(tok)
	p.caPEM = pemCert(caDER)

	files := []struct {
		path string
		data []byte
	}{
		{p.caCert, p.caPEM},
		{p.caKey, mustPEMKey(caKey)},
		{p.servingCert, pemCert(servDER)},
		{p.servKey, mustPEMKey(servKey)},
		{p.serviceAccountKey, mustPEMKey(saKey)},
		// Format: token,user,uid,"group1,group2".
		{p.tokenFile, []byte(fmt.Sprintf("%s,admin,admin,\"system:masters\"\n", p.token))},
		// Written last: complete() treats its presence as "the set is whole".
		{p.adminToken, []byte(p.token + "\n")},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err)
	}
	return n
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// mustPEMKey encodes a private key the way kubeadm writes them: PKCS#1 for
// RSA, SEC 1 for ECDSA. kube-apiserver, kube-controller-manager and Go's TLS
// stack read both.
func mustPEMKey(key crypto.Signer) []byte {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			panic(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	default:
		panic(fmt.Sprintf("unsupported key type %T", key))
	}
}
