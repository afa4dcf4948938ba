package evidence

import (
	_ "embed"
	"html/template"
)

// pages.html holds the list and evidence page templates. It is parsed at
// start-up, so a broken template fails every test rather than a request.
//
//go:embed pages.html
var pagesHTML string

var templates = template.Must(template.New("pages").Parse(pagesHTML))
