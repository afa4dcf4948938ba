package simulate

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Doc is one HTTP request as an ECS document.
type Doc struct {
	Time     time.Time // @timestamp, UTC
	Service  string    // service.name
	Version  string    // service.version: what the host ran at Time
	Host     string    // host.name
	Org      string    // organization.id, numeric but a string, as shippers send it
	Domain   string    // url.domain
	Path     string    // url.path
	Method   string    // http.request.method
	Provider string    // cloud.provider
	Region   string    // cloud.region
	Status   int       // http.response.status_code
	Outcome  string    // event.outcome: "success" or "failure"
	Duration int64     // event.duration, nanoseconds
	Error    string    // error.message, on failures only
	Message  string    // the access-log line
	// Dotted writes "service.name": keys instead of nested objects, as some
	// shippers do; a reader must accept both in one stream.
	Dotted bool
	// Injected marks the incident's own errors. It is ground truth for
	// tests and is not serialised.
	Injected bool
}

// AppendJSON appends the document as one JSON object, without a newline.
// It is hand-written because it runs once per generated request.
func (d *Doc) AppendJSON(b []byte) []byte {
	b = append(b, `{"@timestamp":"`...)
	b = appendTime(b, d.Time)
	b = append(b, '"')
	if d.Dotted {
		b = appendField(b, "service.name", d.Service)
		b = appendField(b, "service.version", d.Version)
		b = appendField(b, "host.name", d.Host)
		b = appendField(b, "organization.id", d.Org)
		b = appendField(b, "cloud.provider", d.Provider)
		b = appendField(b, "cloud.region", d.Region)
		b = appendField(b, "url.domain", d.Domain)
		b = appendField(b, "url.path", d.Path)
		b = appendField(b, "http.request.method", d.Method)
		b = append(b, `,"http.response.status_code":`...)
		b = strconv.AppendInt(b, int64(d.Status), 10)
		b = appendField(b, "event.outcome", d.Outcome)
		b = append(b, `,"event.duration":`...)
		b = strconv.AppendInt(b, d.Duration, 10)
		if d.Error != "" {
			b = appendField(b, "error.message", d.Error)
		}
	} else {
		b = append(b, `,"service":{"name":`...)
		b = appendString(b, d.Service)
		b = append(b, `,"version":`...)
		b = appendString(b, d.Version)
		b = append(b, `},"host":{"name":`...)
		b = appendString(b, d.Host)
		b = append(b, `},"organization":{"id":`...)
		b = appendString(b, d.Org)
		b = append(b, `},"cloud":{"provider":`...)
		b = appendString(b, d.Provider)
		b = append(b, `,"region":`...)
		b = appendString(b, d.Region)
		b = append(b, `},"url":{"domain":`...)
		b = appendString(b, d.Domain)
		b = append(b, `,"path":`...)
		b = appendString(b, d.Path)
		b = append(b, `},"http":{"request":{"method":`...)
		b = appendString(b, d.Method)
		b = append(b, `},"response":{"status_code":`...)
		b = strconv.AppendInt(b, int64(d.Status), 10)
		b = append(b, `}},"event":{"outcome":`...)
		b = appendString(b, d.Outcome)
		b = append(b, `,"duration":`...)
		b = strconv.AppendInt(b, d.Duration, 10)
		b = append(b, '}')
		if d.Error != "" {
			b = append(b, `,"error":{"message":`...)
			b = appendString(b, d.Error)
			b = append(b, '}')
		}
	}
	b = appendField(b, "message", d.Message)
	return append(b, '}')
}

func appendField(b []byte, key, val string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, val)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Generated values are plain
// ASCII, so the common case is one scan and one copy.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\t':
			b = append(b, '\\', 't')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			} else {
				b = append(b, `\ufffd`...) // invalid UTF-8
			}
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendTime writes RFC 3339 with milliseconds in UTC, the form Elastic's
// date detection and every log shipper agree on.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	ms := t.Nanosecond() / 1e6
	b = append4(b, y)
	b = append(b, '-')
	b = append2(b, int(mo))
	b = append(b, '-')
	b = append2(b, d)
	b = append(b, 'T')
	b = append2(b, h)
	b = append(b, ':')
	b = append2(b, mi)
	b = append(b, ':')
	b = append2(b, s)
	b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
	return b
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

func append4(b []byte, n int) []byte {
	return append(b, byte('0'+n/1000%10), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}
