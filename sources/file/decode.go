package file

import "github.com/culprithq/culprit/correlate"

// DecodeDeploy decodes one deploy record of the deploys file format (README,
// "Input formats"), so that deploys posted over HTTP are validated exactly
// like deploys read from a file. raw must be one JSON object; unknown fields
// are ignored. The error lists every problem of the record at once, each
// naming its field (for example "hosts[2].at"), and never echoes more than a
// short excerpt of the input.
func DecodeDeploy(raw []byte) (correlate.Deploy, error) {
	return decodeDeploy(raw)
}

// DecodeTicket decodes one ticket object as Zendesk's API and incremental
// export shape it (ids as numbers or digit strings, via as an object or a
// string), so that tickets from the HTTP intake, the Zendesk poller and files
// are the same. The error lists every problem of the ticket, naming fields.
func DecodeTicket(raw []byte) (correlate.Ticket, error) {
	return decodeTicket(raw)
}
