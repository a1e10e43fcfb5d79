// Command test-cluster runs a small but real Kubernetes control plane in one
// process for end-to-end tests: an embedded etcd, kube-apiserver and
// kube-controller-manager, all at the versions pinned in go.mod. There is no
// scheduler and no kubelet, so Pods are accepted and stay Pending.
//
// Usage:
//
//	test-cluster --dir DIR [--port N] [--ready-timeout 3m]
//
// DIR receives the etcd data, keys, certificates, the static token file and
// etcd's log. DIR/kubeconfig (admin token, cluster CA, https://127.0.0.1:PORT)
// is written atomically once /readyz answers 200 and the controller manager
// has created the default ServiceAccount, so a waiter can poll for the file.
// SIGTERM or SIGINT stops everything and exits 0.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	_ "time/tzdata" // CronJob time zones, as in the upstream binaries

	"go.etcd.io/etcd/server/v3/embed"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/component-base/cli"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register"          // as in the upstream binaries
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // as in the upstream binaries
	_ "k8s.io/component-base/metrics/prometheus/version"  // as in the upstream binaries
	"k8s.io/klog/v2"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

// controllers is the kube-controller-manager --controllers list: the
// workload, namespace, service-account, RBAC-aggregation and garbage
// collection loops. Node, volume, certificate and cloud controllers are left
// out because there are no nodes. Names are those of
// cmd/kube-controller-manager/names in Kubernetes 1.35.
var controllers = []string{
	"garbage-collector-controller",
	"namespace-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"root-ca-certificate-publisher-controller",
	"clusterrole-aggregation-controller",
	"deployment-controller",
	"replicaset-controller",
	"replicationcontroller-controller",
	"statefulset-controller",
	"daemonset-controller",
	"job-controller",
	"cronjob-controller",
	"ttl-after-finished-controller",
	"endpoints-controller",
	"endpointslice-controller",
	"resourcequota-controller",
	"disruption-controller",
}

// errSignal is the cancellation cause when SIGTERM or SIGINT arrived.
var errSignal = errors.New("signal received")

var logger = log.New(os.Stderr, "test-cluster: ", log.LstdFlags|log.Lmicroseconds)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("test-cluster", flag.ContinueOnError)
	dirFlag := fs.String("dir", "", "state directory: etcd data, keys, certificates, logs, kubeconfig (required)")
	port := fs.Int("port", 0, "kube-apiserver secure port on 127.0.0.1; 0 picks a free port")
	readyTimeout := fs.Duration("ready-timeout", 3*time.Minute, "give up when the cluster is not ready after this long")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *dirFlag == "" || fs.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: test-cluster --dir DIR [--port N] [--ready-timeout DURATION]")
		return 2
	}
	dir, err := filepath.Abs(*dirFlag)
	if err != nil {
		logger.Print(err)
		return 1
	}

	// Listen for signals before anything slow happens. kube-apiserver
	// registers its own handler as well (genericapiserver.SetupSignalContext,
	// called by NewAPIServerCommand); os/signal delivers to both.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigCh := make(chan os.Signal, 1)
	signal.Notify(sigCh, syscall.SIGTERM, syscall.SIGINT)
	var signalled atomic.Bool
	go func() {
		<-sigCh
		signalled.Store(true)
		cancel(errSignal)
	}()
	// A signal during kube-apiserver's startup makes its post-start hooks
	// fail, and it exits through klog.Fatal (status 255), as the standalone
	// binary does. Here a stop that was asked for is a clean stop.
	klog.OsExit = func(code int) {
		if signalled.Load() {
			code = 0
		}
		os.Exit(code)
	}

	kubeconfigPath := filepath.Join(dir, "kubeconfig")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		logger.Print(err)
		return 1
	}
	// A kubeconfig left over from an earlier run would tell waiters that the
	// cluster is up before it is.
	if err := os.Remove(kubeconfigPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		logger.Print(err)
		return 1
	}

	start := time.Now()
	keys := newPKI(filepath.Join(dir, "pki"))
	if err := keys.ensure(); err != nil {
		logger.Printf("preparing keys: %v", err)
		return 1
	}

	etcd, etcdURL, err := startEtcd(ctx, filepath.Join(dir, "etcd"), filepath.Join(dir, "etcd.log"))
	if err != nil {
		logger.Printf("starting etcd: %v", err)
		return exitCode(ctx)
	}
	// From here on every exit goes through stop, which closes etcd.
	apiserver := &apiserverState{done: make(chan struct{})}
	stop := func(err error) int {
		return shutdown(ctx, cancel, err, etcd, apiserver)
	}
	go func() {
		select {
		case err := <-etcd.Err():
			cancel(fmt.Errorf("etcd: %w", err))
		case <-ctx.Done():
		}
	}()
	logger.Printf("etcd serving on %s", etcdURL)

	if *port == 0 {
		if *port, err = freePort(); err != nil {
			return stop(err)
		}
	}
	server := "https://127.0.0.1:" + strconv.Itoa(*port)

	// kube-controller-manager reads its credentials from a file; it gets the
	// same admin kubeconfig that is published at the end.
	kcmKubeconfig := filepath.Join(dir, "controller-manager.kubeconfig")
	if err := writeKubeconfig(kcmKubeconfig, server, keys.caPEM, keys.token); err != nil {
		return stop(err)
	}

	apiserverCmd := apiserverapp.NewAPIServerCommand()
	apiserverCmd.SetArgs([]string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(*port),
		"--cert-dir=" + keys.dir,
		"--tls-cert-file=" + keys.servingCert,
		"--tls-private-key-file=" + keys.servKey,
		"--client-ca-file=" + keys.caCert,
		"--token-auth-file=" + keys.tokenFile,
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + keys.serviceAccountKey,
		"--service-account-signing-key-file=" + keys.serviceAccountKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		// Nothing would maintain the kubernetes Service's endpoints for a
		// loopback address, and the reconciler only logs errors about it.
		"--endpoint-reconciler-type=none",
		// Privileged pods are allowed cluster-wide as in most clusters;
		// PodSecurity admission (on by default, --enable-admission-plugins
		// is deliberately left unset) restricts them per namespace.
		"--allow-privileged=true",
		// A positive grace period makes open watches end as soon as
		// shutdown starts. Without it the HTTP server waits for the
		// controller manager's watches for up to a minute.
		"--shutdown-watch-termination-grace-period=2s",
		"--profiling=false",
		"--v=0",
	})
	// The command runs with the signal context it created itself, not with
	// ctx: SIGTERM/SIGINT start its graceful shutdown.
	apiserver.signalCtx = apiserverCmd.Context()
	apiserver.running.Store(true)
	go func() {
		err := cli.RunNoErrOutput(apiserverCmd)
		apiserver.running.Store(false)
		close(apiserver.done)
		cancel(fmt.Errorf("kube-apiserver exited: %v", err))
	}()

	probe := newProber(server, keys.caPEM, keys.token)
	deadline := start.Add(*readyTimeout)
	if err := probe.waitFor(ctx, deadline, "/readyz"); err != nil {
		return stop(err)
	}
	logger.Printf("kube-apiserver ready on %s after %s", server, time.Since(start).Round(time.Millisecond))

	kcmCmd := kcmapp.NewControllerManagerCommand()
	kcmCmd.SetArgs([]string{
		"--kubeconfig=" + kcmKubeconfig,
		"--leader-elect=false",
		// No HTTPS endpoint: nothing scrapes it, and it would need a port.
		"--secure-port=0",
		"--controllers=" + strings.Join(controllers, ","),
		"--service-account-private-key-file=" + keys.serviceAccountKey,
		"--root-ca-file=" + keys.caCert,
		"--use-service-account-credentials=true",
		"--v=0",
	})
	go func() {
		err := cli.RunNoErrOutput(kcmCmd)
		cancel(fmt.Errorf("kube-controller-manager exited: %v", err))
	}()

	// The default ServiceAccount of the default namespace is created by the
	// controller manager; waiting for it means the controllers are running,
	// and Pods created right after the kubeconfig appears are not rejected
	// for lack of a ServiceAccount.
	if err := probe.waitFor(ctx, deadline, "/api/v1/namespaces/default/serviceaccounts/default"); err != nil {
		return stop(err)
	}
	if err := writeKubeconfig(kubeconfigPath, server, keys.caPEM, keys.token); err != nil {
		return stop(err)
	}
	logger.Printf("ready after %s; kubeconfig: %s", time.Since(start).Round(time.Millisecond), kubeconfigPath)

	<-ctx.Done()
	code := stop(nil)
	// Only a running cluster has a kubeconfig.
	_ = os.Remove(kubeconfigPath)
	return code
}

// apiserverState tracks the kube-apiserver goroutine.
type apiserverState struct {
	running   atomic.Bool
	done      chan struct{}   // closed when the command has returned
	signalCtx context.Context // the command's own context, ended by SIGTERM/SIGINT
}

// shutdown makes sure kube-apiserver stops, waits for it, closes etcd and
// returns the exit code.
func shutdown(ctx context.Context, cancel context.CancelCauseFunc, err error, etcd *embed.Etcd, apiserver *apiserverState) int {
	if err != nil {
		cancel(err)
	}
	cause := context.Cause(ctx)
	if errors.Is(cause, errSignal) {
		logger.Print("signal received, shutting down")
	} else {
		logger.Printf("shutting down: %v", cause)
	}
	if apiserver.running.Load() {
		// genericapiserver.RequestShutdown acts like a signal. It must not
		// follow a real one: kube-apiserver exits 1 on the second signal.
		// After a signal, give its handler a moment to see it; it misses the
		// signal only if that came before the handler was installed.
		request := true
		if errors.Is(cause, errSignal) {
			select {
			case <-apiserver.signalCtx.Done():
				request = false
			case <-time.After(time.Second):
			}
		}
		if request {
			genericapiserver.RequestShutdown()
		}
		select {
		case <-apiserver.done:
		case <-time.After(30 * time.Second):
			logger.Print("kube-apiserver did not stop within 30s")
		}
	}
	etcd.Close()
	return exitCode(ctx)
}

func exitCode(ctx context.Context) int {
	if errors.Is(context.Cause(ctx), errSignal) {
		return 0
	}
	return 1
}

// startEtcd starts a single-member etcd on loopback ports and waits until it
// serves. fsync is off: the data only has to outlive the process, not a
// power cut, and fsync dominates etcd's latency on shared disks.
func startEtcd(ctx context.Context, dataDir, logFile string) (*embed.Etcd, string, error) {
	clientPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(clientPort))}
	peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(peerPort))}

	cfg := embed.NewConfig()
	cfg.Name = "test-cluster"
	cfg.Dir = dataDir
	cfg.UnsafeNoFsync = true
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "warn"
	// NewConfig leaves this at 0 (only etcd's flag parsing sets the default),
	// which would log every request as slow.
	cfg.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration
	cfg.LogOutputs = []string{logFile}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, clientURL.String(), nil
	case err := <-e.Err():
		e.Close()
		return nil, "", err
	case <-time.After(time.Minute):
		e.Close()
		return nil, "", errors.New("etcd not ready after 1m")
	case <-ctx.Done():
		e.Close()
		return nil, "", context.Cause(ctx)
	}
}

// freePort asks the kernel for an unused loopback port. Another process
// could take it before it is bound again; on a test machine that is rare.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeKubeconfig writes an admin kubeconfig via a temporary file and a
// rename, so that a reader sees either no file or a complete one.
func writeKubeconfig(path, server string, caPEM []byte, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test-cluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["test-cluster"] = &clientcmdapi.Context{Cluster: "test-cluster", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "test-cluster"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kubeconfig-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// prober issues authenticated GETs against the apiserver.
type prober struct {
	server string
	token  string
	client *http.Client
}

func newProber(server string, caPEM []byte, token string) *prober {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &prober{
		server: server,
		token:  token,
		client: &http.Client{
			Timeout:   5 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		},
	}
}

// waitFor polls path until it answers 200, ctx ends or deadline passes.
func (p *prober) waitFor(ctx context.Context, deadline time.Time, path string) error {
	var last string
	for {
		status, err := p.get(ctx, path)
		switch {
		case err == nil && status == http.StatusOK:
			return nil
		case err != nil:
			last = err.Error()
		default:
			last = "HTTP " + strconv.Itoa(status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s (last answer: %s)", path, last)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (p *prober) get(ctx context.Context, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.server+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func init() {
	// kube-apiserver and kube-controller-manager each apply the logging
	// configuration from their flags; by default the second call is an
	// error. Both get the same logging flags, so allow the repeat.
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
}
