package netup

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/config"
)

func TestRecord(t *testing.T) {
	r := Record{Interfaces: []Interface{
		{Name: "enp0s3", MAC: "52:54:00:AA:bb:cc", Driver: "virtio_net", Target: "ssh://root@h"},
		{Name: "eno1", MAC: "52:54:00:aa:bb:cc"},
		{Name: "eno2", MAC: "3c:ec:ef:00:00:02"},
	}}
	got, err := ParseRecord(r.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"52:54:00:aa:bb:cc", "3c:ec:ef:00:00:02"}; !slices.Equal(got.MACs(), want) {
		t.Errorf("MACs %v, want %v", got.MACs(), want)
	}
	if got.Interfaces[0].Driver != "virtio_net" || got.Interfaces[0].Target != "ssh://root@h" {
		t.Errorf("round trip %+v", got.Interfaces[0])
	}
	var none *Record
	if none.MACs() != nil {
		t.Error("a nil record has MACs")
	}
	for _, bad := range []string{`{"interfaces":[{"mac":"nope"}]}`, `[`, strings.Repeat(" ", maxRecordSize+1)} {
		if _, err := ParseRecord([]byte(bad)); err == nil {
			t.Errorf("ParseRecord(%.20q) accepted", bad)
		}
	}
}

func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"interfaces":[{"name":"eth0","mac":"52:54:00:12:34:56"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if err != nil {
			return
		}
		again, err := ParseRecord(r.Marshal())
		if err != nil || !slices.Equal(again.MACs(), r.MACs()) {
			t.Fatalf("%q does not round-trip: %v", b, err)
		}
	})
}

func TestPlanFor(t *testing.T) {
	for _, tt := range []struct {
		ip, gw string
		dns    []string
		want   string
		err    bool
	}{
		{ip: "dhcp", want: "DHCPv4"},
		{ip: "dhcp6", want: "DHCPv6"},
		{ip: "192.0.2.5/24", gw: "192.0.2.1", dns: []string{"192.0.2.53"}, want: "static 192.0.2.5/24 via 192.0.2.1, dns 192.0.2.53"},
		{ip: "192.0.2.5/24,2001:db8::5/64", gw: "192.0.2.1,2001:db8::1", want: "static 192.0.2.5/24, 2001:db8::5/64 via 192.0.2.1 via 2001:db8::1"},
		{ip: "192.0.2.5", err: true},
		{ip: "dhcp", dns: []string{"x"}, err: true},
	} {
		c := config.Default()
		c.IP, c.Gateway, c.DNS = tt.ip, tt.gw, tt.dns
		p, err := PlanFor(&c)
		if (err != nil) != tt.err {
			t.Errorf("PlanFor(%q): %v", tt.ip, err)
			continue
		}
		if err == nil && p.String() != tt.want {
			t.Errorf("PlanFor(%q) = %q, want %q", tt.ip, p, tt.want)
		}
	}
	if got := string(ResolvConf([]netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53")})); got != "nameserver 192.0.2.53\nnameserver 2001:db8::53\n" {
		t.Errorf("resolv.conf %q", got)
	}
}
