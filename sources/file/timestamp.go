package file

import (
	"math"
	"time"

	"github.com/valyala/fastjson"
)

// Timestamps are kept as Unix nanoseconds: bucketing is then one integer
// division, and nothing on the hot path builds a time.Time. The price is the
// range int64 nanoseconds can hold, 1678 to 2262, which no log line
// legitimately leaves; anything outside is an unusable timestamp.

// valueTime reads an RFC 3339 string or an epoch-milliseconds number.
func valueTime(v *fastjson.Value) (int64, bool) {
	switch v.Type() {
	case fastjson.TypeString:
		return parseRFC3339(v.GetStringBytes())
	case fastjson.TypeNumber:
		if ms, err := v.Int64(); err == nil {
			if ms > math.MaxInt64/int64(time.Millisecond) || ms < math.MinInt64/int64(time.Millisecond) {
				return 0, false
			}
			return ms * int64(time.Millisecond), true
		}
		f, err := v.Float64()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, false
		}
		ns := f * float64(time.Millisecond)
		if ns >= math.MaxInt64 || ns <= math.MinInt64 {
			return 0, false
		}
		return int64(math.Floor(ns)), true
	}
	return 0, false
}

// parseRFC3339 handles the overwhelmingly common YYYY-MM-DDTHH:MM:SS[.f]Z
// and ±HH:MM forms by hand, about ten times faster than time.Parse, and
// hands anything else to time.Parse so that the accepted language is exactly
// RFC 3339 as Go reads it.
func parseRFC3339(b []byte) (int64, bool) {
	if ns, ok, sure := fastRFC3339(b); sure {
		return ns, ok
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return 0, false
	}
	return unixNano(t)
}

func unixNano(t time.Time) (int64, bool) {
	if y := t.Year(); y < 1678 || y > 2261 {
		return 0, false
	}
	return t.UnixNano(), true
}

// fastRFC3339 returns sure=false when it cannot decide, leaving the line to
// the slow, authoritative parser.
func fastRFC3339(b []byte) (ns int64, ok, sure bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return 0, false, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return 0, false, false
	}
	if year < 1678 || year > 2261 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return 0, false, false
	}
	rest := b[19:]
	var frac int64
	if rest[0] == '.' {
		n := 1
		scale := int64(100_000_000)
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			if n > 9 {
				return 0, false, false
			}
			frac += int64(rest[n]-'0') * scale
			scale /= 10
			n++
		}
		if n == 1 {
			return 0, false, false
		}
		rest = rest[n:]
	}
	var offset int64
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := digits(rest[1:3])
		om, ok2 := digits(rest[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false, false
		}
		offset = int64(oh*3600 + om*60)
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return 0, false, false
	}
	secs := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec) - offset
	return secs*1e9 + frac, true, true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is Howard Hinnant's days_from_civil: days since 1970-01-01
// in the proleptic Gregorian calendar.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
