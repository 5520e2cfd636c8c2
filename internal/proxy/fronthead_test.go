package proxy

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

func TestFrontHeadEnd(t *testing.T) {
	for _, tc := range []struct {
		in     string
		n      int
		bareLF bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest", 27, false},
		{"GET / HTTP/1.1\r\nHost: a\r\n", 0, false},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", 0, false},
		{"GET / HTTP/1.1\nHost: a\r\n\r\n", 0, true},
		{"GET / HTTP/1.1\r\nHost: a\n\r\n", 0, true},
		{"GET / HTTP/1.1\r\nHost: a\r\n\n", 0, true},
		{"\n", 0, true},
		{"", 0, false},
	} {
		n, bare := frontHeadEnd([]byte(tc.in), 0)
		if n != tc.n || bare != tc.bareLF {
			t.Errorf("frontHeadEnd(%q) = %d, %v; want %d, %v", tc.in, n, bare, tc.n, tc.bareLF)
		}
	}
}

// TestFrontHeadEndInPieces: searching a head as it arrives in pieces,
// each search starting where the last one ended, finds what one search of
// the same bytes finds.
func TestFrontHeadEndInPieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, head := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("v", 300) + "\r\n\r\nGET /next",
		"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: \r\r\n\r\n",
		"\r\n\r\n",
	} {
		for range 200 {
			searched := 0
			for end := 0; end < len(head); {
				end = min(len(head), end+1+rng.IntN(8))
				data := []byte(head[:end])
				n, bare := frontHeadEnd(data, searched)
				searched = len(data)
				wantN, wantBare := frontHeadEnd(data, 0)
				if n != wantN || bare != wantBare {
					t.Fatalf("%q up to %d: in pieces %d, %v; at once %d, %v", head, end, n, bare, wantN, wantBare)
				}
				if n > 0 || bare {
					break
				}
			}
		}
	}
}

func TestParseFrontRequest(t *testing.T) {
	req, ok := parseFrontRequest([]byte("GET /a%20b?q=1 HTTP/1.1\r\nhost: Shop.Example\r\nx-id: 1\r\nX-Id:  2 \r\n" +
		"Connection: keep-alive, close\r\nPragma: no-cache\r\n\r\n"))
	if !ok {
		t.Fatal("rejected a plain GET")
	}
	if req.Method != "GET" || req.URL.Path != "/a b" || req.URL.RawQuery != "q=1" || req.RequestURI != "/a%20b?q=1" ||
		req.Host != "Shop.Example" || !req.Close || req.Body != http.NoBody || req.ProtoMinor != 1 {
		t.Fatalf("request %+v", req)
	}
	want := http.Header{"X-Id": {"1", "2"}, "Connection": {"keep-alive, close"}, "Pragma": {"no-cache"}, "Cache-Control": {"no-cache"}}
	if !reflect.DeepEqual(req.Header, want) {
		t.Fatalf("header %v, want %v", req.Header, want)
	}
	for _, head := range []string{
		"POST / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n",
		"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\n",
	} {
		if _, ok := parseFrontRequest([]byte(head)); ok {
			t.Errorf("accepted %q", head)
		}
	}
}

// FuzzFrontRequestMatchesNetHTTP checks the front end's request parser
// against net/http's: a head the front end serves must be one net/http's
// server accepts, read into the same request, ending at the same byte —
// so the two can never disagree about where a request ends (request
// smuggling) or what it says.
func FuzzFrontRequestMatchesNetHTTP(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /x?y=1 HTTP/1.1\r\nHost: www.example.com:8080\r\nAccept: */*\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n",
		"HEAD /%41 HTTP/1.1\r\nhost: [::1]:80\r\nPragma: no-cache\r\nx-a:\t v \r\nX-A: w\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET //a/../b HTTP/1.1\r\nHost: a\r\nCookie: a=b; c=d\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, _ := frontHeadEnd(data, 0)
		if n == 0 {
			return
		}
		got, ok := parseFrontRequest(data[:n])
		if !ok {
			return
		}
		br := bufio.NewReader(bytes.NewReader(data))
		want, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("front end serves %q, net/http refuses it: %v", data[:n], err)
		}
		// What net/http's server checks after reading the request (its
		// Host fields, which ReadRequest removes from the header).
		tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(data[:n])))
		_, _ = tp.ReadLine()
		mh, err := tp.ReadMIMEHeader()
		if err != nil {
			t.Fatalf("front end serves %q, net/textproto refuses its fields: %v", data[:n], err)
		}
		hosts := mh["Host"]
		if len(hosts) != 1 || !httpguts.ValidHostHeader(hosts[0]) {
			t.Fatalf("front end serves %q, net/http answers 400 (Host %q)", data[:n], hosts)
		}
		for k, vv := range want.Header {
			if !httpguts.ValidHeaderFieldName(k) {
				t.Fatalf("front end serves %q, net/http refuses field name %q", data[:n], k)
			}
			for _, v := range vv {
				if !httpguts.ValidHeaderFieldValue(v) {
					t.Fatalf("front end serves %q, net/http refuses value %q", data[:n], v)
				}
			}
		}
		if want.Method != got.Method || want.RequestURI != got.RequestURI || want.Host != got.Host ||
			want.Proto != got.Proto || want.Close != got.Close || want.ContentLength != 0 ||
			len(want.TransferEncoding) != 0 || !reflect.DeepEqual(want.URL, got.URL) ||
			!reflect.DeepEqual(want.Header, got.Header) {
			t.Fatalf("%q read differently:\nnet/http: %s %s host %q close %v length %d %v\nfront:    %s %s host %q close %v %v",
				data[:n], want.Method, want.RequestURI, want.Host, want.Close, want.ContentLength, want.Header,
				got.Method, got.RequestURI, got.Host, got.Close, got.Header)
		}
		// The request ends where the front end says: what follows is the
		// next request for both.
		rest, _ := io.ReadAll(br)
		if !bytes.Equal(rest, data[n:]) {
			t.Fatalf("%q: net/http's request ends elsewhere (left %q, front end %q)", data, rest, data[n:])
		}
	})
}
