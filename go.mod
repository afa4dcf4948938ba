module github.com/culprithq/culprit

go 1.26

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/valyala/fastjson v1.6.10 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	gonum.org/v1/gonum v0.17.0 // indirect
)
