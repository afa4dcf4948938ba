module github.com/culprithq/culprit

go 1.26

require (
	github.com/klauspost/compress v1.20.3
	github.com/valyala/fastjson v1.6.10
	go.yaml.in/yaml/v3 v3.0.6
	gonum.org/v1/gonum v0.17.0
)
