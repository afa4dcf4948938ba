package main

import (
	"strings"
	"testing"
)

const loghubRun = `culprit checkout: /work/wt/sig (009b000)
(extra) GA mean against the ICSE'22-corrected ground truth (loghub_2k_corrected): 0.9490

dataset       lines    gt  pred      GA      F1      PA Drain_pub  best_pub  best_by
------------------------------------------------------------------------------------
HDFS           2000    14    14  1.0000  1.0000  0.9975     0.998     1.000  IPLoM/LKE/Spell
Android        2000   166   189  0.8220  0.9737  0.8550     0.911     0.919  Spell
Odd            2000     6     6  0.9000  1.0000  0.5760       nan       nan
------------------------------------------------------------------------------------
mean                             0.9073  0.9912  0.8095     0.954     0.959
loghub GA mean: 0.9073 (Drain published: 0.9545)
`

func TestFormatLoghub(t *testing.T) {
	runFormatCases(t, func(in *strings.Reader, out *strings.Builder) error { return formatLoghub(in, out) }, []formatCase{
		{"rows beside the published figures", loghubRun, []string{
			"| HDFS | 14 | 14 | **1.000** | 0.998 | 1.000 | IPLoM/LKE/Spell |",
			"| Android | 166 | 189 | **0.822** | 0.911 | 0.919 | Spell |",
			"| Odd | 6 | 6 | **0.900** | – | – |  |",
			"| **mean** | | | **0.907** | 0.954 | 0.959 | |",
			"3 systems of 2,000 lines; lowest culprit GA 0.822 (Android).",
			"the mean is 0.949.",
		}, ""},
		{"no table is an error", "culprit checkout: /x (abc)\n", nil, "no loghub table"},
		{"rows without the mean are an error", strings.Split(loghubRun, "----\nmean")[0], nil, "no loghub table"},
	})
}
