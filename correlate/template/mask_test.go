package template

import (
	"strings"
	"testing"
	"unicode/utf8"
)

var maskCases = []struct {
	name, in, want string
}{
	// UUIDs
	{"uuid", "user 550e8400-e29b-41d4-a716-446655440000 not found", "user <*> not found"},
	{"uuid upper case", "job 550E8400-E29B-41D4-A716-446655440000 failed", "job <*> failed"},
	{"uuid in url path segment", "tenant=550e8400-e29b-41d4-a716-446655440000/x", "tenant=<*>/x"},
	{"uuid with trailing letters is not a uuid", "id 550e8400-e29b-41d4-a716-446655440000zz", "id <*>-e<*>b-<*>d<*>-a<*>-<*>zz"},

	// IPv4
	{"ipv4 with port", "dial tcp 10.0.0.12:5432: connect: connection refused", "dial tcp <*>: connect: connection refused"},
	{"ipv4 without port", "request from 192.168.1.20 rejected", "request from <*> rejected"},
	{"ipv4 in brackets", "peer (172.16.0.1) gone", "peer (<*>) gone"},

	// IPv6
	{"ipv6 bracketed with port", "dial tcp [::1]:8080: connection refused", "dial tcp <*>: connection refused"},
	{"ipv6 compressed", "peer fe80::1ff:fe23:4567:890a lost", "peer <*> lost"},
	{"ipv6 full", "from 2001:0db8:85a3:0000:0000:8a2e:0370:7334 denied", "from <*> denied"},
	{"ipv6 loopback then colon", "listen ::1: address in use", "listen <*>: address in use"},
	{"ipv6 with ipv4 tail", "client ::ffff:10.1.2.3 reset", "client <*> reset"},
	{"mac address", "link 00:1a:2b:3c:4d:5e down", "link <*> down"},
	{"clock time", "at 10:30:00 UTC", "at <*> UTC"},
	{"rust path is not ipv6", "std::io::Error", "std::io::Error"},

	// URLs
	{"url", "GET https://api.example.com/v1/users?id=42 failed", "GET <*> failed"},
	{"url in parentheses", "see (https://status.example.io/incidents/ab)", "see (<*>)"},
	{"url trailing period", "fetch http://x.internal/a.", "fetch <*>."},
	{"url non-http scheme", "upload to s3://bucket/key/part-0001 failed", "upload to <*> failed"},
	{"bare scheme is kept", "no host in http://", "no host in http://"},

	// Paths
	{"url path", "GET /api/v1/users/42 returned 500", "GET <*> returned <*>"},
	{"file path with trailing colon", "open /var/lib/app/data.db: permission denied", "open <*>: permission denied"},
	{"path after equals", "path=/srv/www/index.html,", "path=<*>,"},
	{"single segment kept", "GET /healthz 503", "GET /healthz <*>"},
	{"slash inside word kept", "read and/or write", "read and/or write"},
	{"path in quotes is a quote", "open '/etc/app/conf.yml'", "open <*>"},

	// Quoted values
	{"single quotes", "column 'email' cannot be null", "column <*> cannot be null"},
	{"double quotes with spaces", `key "a b c" missing`, "key <*> missing"},
	{"backticks", "table `orders_2024` locked", "table <*> locked"},
	{"escaped quote inside", `msg "say \"hi\" now" end`, "msg <*> end"},
	{"escaped backslash before close", `path "C:\\" end`, "path <*> end"},
	{"apostrophes are not quotes", "can't open user's file", "can't open user's file"},
	{"apostrophe then quote", "can't find 'x'", "can't find <*>"},
	{"json", `{"code":"E42","msg":"bad"}`, "{<*>:<*>,<*>:<*>}"},
	{"unterminated quote", "it's 'open", "it's 'open"},
	{"quote closed only at word end", "'a'b c'", "<*>"},
	{"empty quotes", `value "" invalid`, "value <*> invalid"},

	// Hex
	{"0x", "segfault at 0x7ffd5a2b8c10 ip 0xDEADBEEF", "segfault at <*> ip <*>"},
	{"0x then letters", "mask 0x1fzz", "mask <*>zz"},
	{"long hex with digit", "commit a3f9c2d1e8 not found", "commit <*> not found"},
	{"hex after underscore", "request req_ab12cd34ef expired", "request req_<*> expired"},
	{"hex word without digit kept", "deadbeefcafe decade", "deadbeefcafe decade"},
	{"short hex only loses digits", "tag ab12", "tag ab<*>"},

	// Emails
	{"email", "mail to john.doe+x@example.co.uk bounced", "mail to <*> bounced"},
	{"email in angle brackets", "from <ops@example.com>", "from <<*>>"},
	{"email with trailing dot", "notify a@b.io.", "notify <*>."},
	{"no tld is not an email", "user@localhost denied", "user@localhost denied"},
	{"numeric tld is not an email", "pkg@1.2 missing", "pkg@<*> missing"},

	// Numbers
	{"number glued by dash", "function fn-1234 crashed", "function fn-<*> crashed"},
	{"unit kept", "timeout after 30s", "timeout after <*>s"},
	{"decimal with unit", "took 10.5ms", "took <*>ms"},
	{"plain numbers", "retry 3 of 5", "retry <*> of <*>"},
	{"status code", "HTTP 502", "HTTP <*>"},
	{"version", "client v1.2.3 unsupported", "client v<*> unsupported"},
	{"number inside word", "shard12 down", "shard<*> down"},
	{"timestamp", "at 2024-01-02T10:30:00.123Z", "at <*>-<*>-<*>T<*>:<*>:<*>Z"},
	{"source position", "main.go:42:7: undefined", "main.go:<*>:<*>: undefined"},
	{"index", "index out of range [5] with length 3", "index out of range [<*>] with length <*>"},

	// Host names
	{"host with port", "proxy.cse.cuhk.edu.hk:5070 open through proxy", "<*> open through proxy"},
	{"customer site", "upstream request timeout after 3000ms to origin shop-acme.example.net", "upstream request timeout after <*>ms to origin <*>"},
	{"internal host", "dial db-3.internal failed", "dial <*> failed"},
	{"country domain after two dots", "rhost=biblioteka.wsi.edu.pl", "rhost=<*>"},
	{"host in parentheses", "connection from 1.2.3.4 (dsl-static.touchtelindia.net) at", "connection from <*> (<*>) at"},
	{"file name kept", "open config.yml and main.go", "open config.yml and main.go"},
	{"module name kept", "logging.info called from util.js", "logging.info called from util.js"},
	{"java class kept", "at com.android.server.wm.WindowStateAnimator.destroySurface", "at com.android.server.wm.WindowStateAnimator.destroySurface"},
	{"sentence end kept", "see the docs.", "see the docs."},

	// Dates
	{"syslog date", "connection from 10.0.0.1 () at Sun Jul  3 10:05:25 2005", "connection from <*> () at <*> <*> <*> <*> <*>"},
	{"rfc 1123 date", "expires Mon, 02 Jan 2006 15:04:05 GMT", "expires <*>, <*> <*> <*> <*> GMT"},
	{"full month name", "since June 3", "since <*> <*>"},
	{"weekday before month", "on Wednesday March 4", "on <*> <*> <*>"},
	{"month in prose kept", "May not be null", "May not be null"},
	{"weekday in prose kept", "Sun microsystems", "Sun microsystems"},
	{"month glued to a word kept", "Junk 12", "Junk <*>"},
	{"month inside a word kept", "xJun 12", "xJun <*>"},

	// Request lines
	{"quoted request line keeps the method", `10.1.1.1 "GET /v2/abc/servers HTTP/1.1" status: 200`, `<*> "GET <*> HTTP/<*>" status: <*>`},
	{"request line query masked", `"POST /login?next=/a/b HTTP/2.0" 302`, `"POST <*> HTTP/<*>" <*>`},
	{"method alone is a quoted value", `verb "GET" unknown`, "verb <*> unknown"},
	{"lower-case method is a quoted value", `"get /a/b HTTP/1.1"`, "<*>"},

	// Text handling
	{"empty", "", ""},
	{"only space", " \t\n ", ""},
	{"collapse and trim", "  a \t b\n\nc  ", "a b c"},
	{"unicode space", "a\u00a0\u00a0b\u2028c\u0085", "a b c"},
	{"unicode space ends a quote", "'a'\u00a0b", "<*> b"},
	{"unicode space ends a path", "/a/b\u00a0c", "<*> c"},
	{"invalid utf8", "bad \xff byte", "bad \uFFFD byte"},
	{"unicode kept", "café 12 fermé", "café <*> fermé"},
	{"placeholder kept", "fn-<*> timed out after <*>ms", "fn-<*> timed out after <*>ms"},
	{"brief example", "function invocation failed: fn-8812 timed out after 3000ms on provider aws",
		"function invocation failed: fn-<*> timed out after <*>ms on provider aws"},
}

func TestMask(t *testing.T) {
	for _, tc := range maskCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Mask(tc.in); got != tc.want {
				t.Errorf("Mask(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestMaskIdempotent(t *testing.T) {
	for _, tc := range maskCases {
		t.Run(tc.name, func(t *testing.T) {
			once := Mask(tc.in)
			if twice := Mask(once); twice != once {
				t.Errorf("Mask(Mask(%q)) = %q, want %q", tc.in, twice, once)
			}
		})
	}
}

// TestMaskNoAllocUnchanged pins the fast path: a message with nothing to
// mask is returned as is.
func TestMaskNoAllocUnchanged(t *testing.T) {
	msg := "connection reset by peer"
	if n := testing.AllocsPerRun(100, func() { _ = Mask(msg) }); n != 0 {
		t.Errorf("Mask allocated %v times for an unchanged message", n)
	}
}

// checkMask asserts the properties every output must have.
func checkMask(t *testing.T, in string) {
	t.Helper()
	out := Mask(in)
	if twice := Mask(out); twice != out {
		t.Fatalf("not idempotent:\n  in    %q\n  once  %q\n  twice %q", in, out, twice)
	}
	if !utf8.ValidString(out) {
		t.Fatalf("invalid UTF-8 out of %q: %q", in, out)
	}
	if strings.ContainsAny(out, "0123456789") {
		t.Fatalf("digit left in Mask(%q) = %q", in, out)
	}
	if strings.TrimSpace(out) != out || strings.Contains(out, "  ") || strings.ContainsAny(out, "\t\n\r\v\f") {
		t.Fatalf("white space not normalised in Mask(%q) = %q", in, out)
	}
}

func FuzzMask(f *testing.F) {
	for _, tc := range maskCases {
		f.Add(tc.in)
	}
	for _, s := range []string{
		"'", `"\`, "::", "[::", "[1::2]:", "0x", "a@b.c", "a@b.cc.<*>", "/a/", "//a/b", "http://",
		"a.b.com<*>", "a.b.cd:", "x.<*>.com", "-a.com", "a..com", "a.com.", "'a'<*>", `"a\\"b"`, "'a'\u00a0", "/a/\u00a0b", "1.2.3.4.5", "::ffff:1.2.3", "<*><*>", "\xf0\x9f", "1:2:3:4:5:6:7:8:9",
		"A.hk.00", "a.<*>.hk", "x.com<*>.a", "A.CA:0A", "Wed\fMay", "Wed,\u00a0May 3", "1.2.3.4:0x", "A.CA:0000000A", "[::1]:80ab", "A.0::0.CA", "a.com.5", "A.CA:<*>",
	} {
		f.Add(s)
	}
	f.Fuzz(checkMask)
}

var benchMessages = []string{
	"connection reset by peer",
	"function invocation failed: fn-8812 timed out after 3000ms on provider aws",
	"dial tcp 10.0.3.17:5432: connect: connection refused",
	"GET /api/v1/users/918273 returned 502 in 10.5ms",
	"user 550e8400-e29b-41d4-a716-446655440000 not found",
	`pq: duplicate key value violates unique constraint "orders_pkey"`,
	"request req_ab12cd34ef failed: upstream connect error or disconnect/reset before headers",
	"context deadline exceeded",
}

func BenchmarkMask(b *testing.B) {
	bytes := 0
	for _, m := range benchMessages {
		bytes += len(m)
	}
	b.SetBytes(int64(bytes / len(benchMessages)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		_ = Mask(benchMessages[n%len(benchMessages)])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}
