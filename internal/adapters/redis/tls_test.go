package redis_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

// rediss:// works in each form: a single node, a Sentinel group and a Cluster, all speaking only
// TLS (replication and the cluster bus too), each server's certificate checked against the host
// the client reaches it at: the sentinel's is for localhost (the URL's host) only, the master's
// for 127.0.0.1 (where the sentinel says it is) only.
func TestTLSInEachForm(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	tlsServer := func(args ...string) int {
		port := freeTCPPort(t)
		dir := t.TempDir()
		all := append([]string{"--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--protected-mode", "no", "--tls-cert-file", pki.byIP[0], "--tls-key-file", pki.byIP[1],
			"--tls-ca-cert-file", pki.ca, "--tls-auth-clients", "no", "--tls-replication", "yes"}, args...)
		start(t, exec.Command("redis-server", all...)) //nolint:gosec // G204: the test's own arguments
		return port
	}

	single := tlsServer()
	waitTLS(t, pki, single)

	master := tlsServer()
	waitTLS(t, pki, master)
	sentinelPort := freeTCPPort(t)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "port 0\ntls-port %d\nbind 127.0.0.1\ntls-cert-file %s\ntls-key-file %s\n"+
		"tls-ca-cert-file %s\ntls-auth-clients no\ntls-replication yes\nsentinel monitor tlsmaster 127.0.0.1 %d 1\n",
		sentinelPort, pki.byName[0], pki.byName[1], pki.ca, master), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, exec.Command("redis-server", conf, "--sentinel")) //nolint:gosec // G204: the test's own arguments
	waitTLS(t, pki, sentinelPort)

	var nodes []string
	for range 3 {
		p := tlsServer("--cluster-enabled", "yes", "--tls-cluster", "yes", "--cluster-port", strconv.Itoa(freeTCPPort(t)))
		waitTLS(t, pki, p)
		nodes = append(nodes, "127.0.0.1:"+strconv.Itoa(p))
	}
	create := exec.Command("redis-cli", append([]string{"--tls", "--cacert", pki.ca, "--cluster", "create"}, //nolint:gosec // G204: the test's own arguments
		append(nodes, "--cluster-replicas", "0", "--cluster-yes")...)...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}

	for name, url := range map[string]string{
		"single node": fmt.Sprintf("rediss://127.0.0.1:%d/0", single),
		"Sentinel":    fmt.Sprintf("rediss://localhost:%d/0?master_name=tlsmaster", sentinelPort),
		"Cluster":     fmt.Sprintf("rediss://%s?addr=%s&addr=%s", nodes[0], nodes[1], nodes[2]),
	} {
		rdb, err := redisadapter.NewClient(url)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		trust(rdb, pki.pool)
		// The cluster may still be agreeing on its slots: a sale's inventory is written once it has.
		inv := redisadapter.NewInventory(rdb, "fstls")
		start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
		sale := domain.Sale{ID: uuid.New(), TenantID: uuid.New(), Name: "s", PriceCents: 100, Currency: "EUR",
			TotalStock: 5, PerUserLimit: 2, StartsAt: start, EndsAt: start.Add(time.Hour)}
		testutil.WaitFor(t, 20*time.Second, name+" over TLS", func() bool {
			_, err := inv.SyncSale(context.Background(), sale, 0)
			return err == nil
		})
		if got, ok, err := inv.Inventory(context.Background(), sale.TenantID, sale.ID); err != nil || !ok || got.Remaining != 5 {
			t.Errorf("%s over TLS: inventory %+v, %v, %v", name, got, ok, err)
		}
		if err := (redisadapter.Pinger{Client: rdb}).Ping(context.Background()); err != nil {
			t.Errorf("%s over TLS: readiness %v", name, err)
		}
		_ = rdb.Close()
	}
}

// trust makes rdb trust the test's CA: the URL forms take the system's roots only. The TLS
// configuration the URL's parser made, host checks and all, is otherwise the one in use.
func trust(rdb goredis.UniversalClient, pool *x509.CertPool) {
	var c *tls.Config
	switch r := rdb.(type) {
	case *goredis.ClusterClient:
		c = r.Options().TLSConfig
	case *goredis.Client:
		c = r.Options().TLSConfig
	}
	c.RootCAs = pool
}

type testPKI struct {
	ca   string
	pool *x509.CertPool
	// byIP is a certificate for 127.0.0.1 only, byName for localhost only: cert and key files.
	byIP, byName [2]string
}

// newTestPKI writes a CA and two server certificates it signed, one per way to name this host.
func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flashsale test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := testPKI{ca: filepath.Join(dir, "ca.crt"), pool: x509.NewCertPool()}
	p.pool.AddCert(caCert)
	write := func(name string, block *pem.Block) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("ca.crt", &pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	issue := func(name string, tmpl *x509.Certificate) [2]string {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalECPrivateKey(key)
		return [2]string{write(name+".crt", &pem.Block{Type: "CERTIFICATE", Bytes: der}),
			write(name+".key", &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})}
	}
	p.byIP = issue("ip", &x509.Certificate{SerialNumber: big.NewInt(2), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	p.byName = issue("name", &x509.Certificate{SerialNumber: big.NewInt(3), DNSNames: []string{"localhost"}})
	return p
}

func start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

func waitTLS(t *testing.T, p testPKI, port int) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port),
		TLSConfig: &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}}) //nolint:gosec // G402: only waits for the server to answer
	defer c.Close()
	testutil.WaitFor(t, 10*time.Second, "redis over TLS on "+strconv.Itoa(port), func() bool {
		return c.Ping(context.Background()).Err() == nil
	})
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
