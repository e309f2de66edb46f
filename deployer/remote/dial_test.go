package remote

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"deploybot/config"
)

// TestHostKeyAlgorithms: the handshake asks a host for the key types
// known_hosts has for it (x/crypto would otherwise prefer ECDSA and fail
// on a host known by its ed25519 key), and for the defaults when it is
// unknown.
func TestHostKeyAlgorithms(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ed, _ := ssh.NewPublicKey(edPub)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := ssh.NewPublicKey(&rsaKey.PublicKey)
	file := filepath.Join(t.TempDir(), "known_hosts")
	lines := knownhosts.Line([]string{"web1.example.org"}, ed) + "\n" +
		knownhosts.Line([]string{"web1.example.org"}, rs) + "\n" +
		knownhosts.Line([]string{"[web2.example.org]:2222"}, ed) + "\n"
	if err := os.WriteFile(file, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		t.Fatal(err)
	}
	d := &Dialer{HostKeyCallback: cb}
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22}
	for addr, want := range map[string]string{
		"web1.example.org:22":   "ssh-ed25519 rsa-sha2-512 rsa-sha2-256",
		"web2.example.org:2222": "ssh-ed25519",
		"web2.example.org:22":   "",
		"web3.example.org:22":   "",
	} {
		if got := strings.Join(d.hostKeyAlgorithms(addr, remote), " "); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
}

// The known key types are asked of known_hosts once per address, not per
// dial, and a second ask answers the same.
func TestHostKeyAlgorithmsRemembered(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ed, _ := ssh.NewPublicKey(edPub)
	file := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(file, []byte(knownhosts.Line([]string{"web1.example.org"}, ed)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		t.Fatal(err)
	}
	probes := map[string]int{}
	d := &Dialer{HostKeyCallback: func(host string, r net.Addr, k ssh.PublicKey) error {
		probes[host]++
		return cb(host, r, k)
	}}
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22}
	for range 3 {
		for _, addr := range []string{"web1.example.org:22", "web3.example.org:22"} {
			want := map[string]string{"web1.example.org:22": "ssh-ed25519"}[addr]
			if got := strings.Join(d.hostKeyAlgorithms(addr, remote), " "); got != want {
				t.Errorf("%s: %q, want %q", addr, got, want)
			}
		}
	}
	if probes["web1.example.org:22"] != 1 || probes["web3.example.org:22"] != 1 {
		t.Errorf("known_hosts asked %v; want once per address", probes)
	}
}

func TestNewDialerErrors(t *testing.T) {
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, nil, 0o600)
	for name, cfg := range map[string]config.SSH{
		"no user":        {KeyFile: "/nonexistent", KnownHosts: kh},
		"no known_hosts": {User: "u", KeyFile: "/nonexistent"},
		"no key":         {User: "u", KnownHosts: kh},
		"missing key":    {User: "u", KnownHosts: kh, KeyFile: filepath.Join(dir, "nope")},
	} {
		if _, err := NewDialer(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	if _, err := NewDialer(config.SSH{User: "u", KnownHosts: kh, Agent: true}); err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK") {
		t.Errorf("agent without SSH_AUTH_SOCK: %v", err)
	}
	// A passphrase-protected key is refused with advice.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	enc := filepath.Join(dir, "id_enc")
	os.WriteFile(enc, pem.EncodeToMemory(block), 0o600)
	if _, err := NewDialer(config.SSH{User: "u", KnownHosts: kh, KeyFile: enc}); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Errorf("encrypted key: %v", err)
	}
}

func TestHostErrorKinds(t *testing.T) {
	err := error(&HostError{Host: "h", Kind: KindUnreachable, Err: errors.New("refused")})
	if !IsKind(err, KindUnreachable) || IsKind(err, KindTimeout) || err.Error() != "h: unreachable: refused" {
		t.Errorf("%v", err)
	}
}
