package app

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestValidateRegisterNode(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"off", nil, ""},
		{"on with kubeconfig", []string{"--register-node", "--kubeconfig=/k", "--node-ip=192.0.2.10", "--node-external-ip=127.0.0.1"}, ""},
		{"on without kubeconfig", []string{"--register-node"}, "--register-node needs --kubeconfig"},
		{"on without the secure port", []string{"--register-node", "--kubeconfig=/k", "--port=0"}, "needs the secure port"},
		{"node ip without register", []string{"--node-ip=192.0.2.10"}, "need --register-node"},
		{"bad node ip", []string{"--register-node", "--kubeconfig=/k", "--node-ip=node-a"}, `--node-ip "node-a"`},
		{"bad external ip", []string{"--register-node", "--kubeconfig=/k", "--node-external-ip=1.2.3"}, "--node-external-ip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := NewOptions()
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			opts.AddFlags(fs)
			if err := fs.Parse(append([]string{"--node-name=n"}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			err := opts.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

func TestNodeAddresses(t *testing.T) {
	got, err := nodeAddresses("node-a", []string{"192.0.2.10"}, []string{"127.0.0.1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(got); s != "[{InternalIP 192.0.2.10} {ExternalIP 127.0.0.1} {Hostname node-a}]" {
		t.Errorf("addresses %s", s)
	}
	// Without --node-ip: an address the name resolves to that this machine
	// has; "localhost" resolves only to loopback, which is never a node IP,
	// so the default route's interface answers (or there is none).
	got, err = nodeAddresses("localhost", nil, nil, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		if !strings.Contains(err.Error(), "give --node-ip") {
			t.Errorf("error %v does not say what to do", err)
		}
		return
	}
	if ip := net.ParseIP(got[0].Address); got[0].Type != "InternalIP" || ip == nil || ip.IsLoopback() {
		t.Errorf("default InternalIP %+v, want a non-loopback address", got[0])
	}
}
