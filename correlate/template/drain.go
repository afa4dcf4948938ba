package template

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Options tune Drain. Zero values mean defaults (Depth 4, Similarity 0.4,
// MaxChildren 100), the values Drain3 ships with.
type Options struct {
	// Depth counts the levels of Drain's parse tree the way Drain3 does:
	// the root and the token-count layer are two of them, so Depth 4
	// routes a message by its first token only and Depth 3 by none.
	// Values below 3 are treated as 3.
	Depth int
	// Similarity is the share of a template's words a message must
	// repeat, position by position, to join it. Positions where either
	// holds a bare wildcard do not count either way, so heavily masked
	// messages merge on the words they share and only on those.
	Similarity float64
	// MaxChildren bounds the fan-out of a tree node; once a node is full,
	// new first tokens share its wildcard branch.
	MaxChildren int
}

func (o Options) normalized() Options {
	if o.Depth == 0 {
		o.Depth = 4
	}
	o.Depth = max(o.Depth, 3)
	if o.Similarity <= 0 {
		o.Similarity = 0.4
	}
	o.Similarity = min(o.Similarity, 1)
	if o.MaxChildren <= 0 {
		o.MaxChildren = 100
	}
	return o
}

// Cluster is one signature: a template and the masked messages it merged.
type Cluster struct {
	Template string   // tokens that vary across members are "<*>"
	Members  []string // the input messages in this cluster, sorted
}

// Group clusters already-masked messages into signatures with Drain.
//
// The result does not depend on the order of the input: Group runs Drain
// over the sorted, de-duplicated messages, so each distinct message appears
// in exactly one cluster. Clusters are sorted by Template, and no two share
// a template.
//
// Messages with different token counts never merge. With the defaults the
// first token must also agree (or be a wildcard), because Drain routes on
// it before comparing. After Drain, a cluster is split again on every slot
// that holds only plain words, and at most maxWordValues distinct ones:
// "lookup failed: user <*> not found" and "lookup failed: order <*> not
// found" stay two signatures, as do "Link ok" and "Link error", because
// one differing word is what usually tells two events apart. A slot with
// more distinct words than that (user names, table names) is a free-text
// value and becomes "<*>". On the loghub-2k benchmark this choice is worth
// more than any similarity threshold (see BENCHMARKS.md).
func Group(masked []string, opt Options) []Cluster {
	msgs := slices.Clone(masked)
	slices.Sort(msgs)
	msgs = slices.Compact(msgs)
	d := drain{opt: opt.normalized(), byLen: map[int]*node{}}
	for _, m := range msgs {
		d.add(m)
	}
	d.refine()
	return d.result()
}

// Match reports whether a masked message fits a template produced by
// Group: the same number of tokens, each equal to the template's or
// matched by a "<*>" template token. Unlike Group it never generalises a
// template, so a streaming caller can attribute new messages to known
// signatures without re-clustering; messages that match nothing are new
// signatures to hand to Group.
func Match(template, masked string) bool {
	t, m := 0, 0
	for {
		var tt, mt string
		tt, t = nextToken(template, t)
		mt, m = nextToken(masked, m)
		if tt == "" || mt == "" {
			return tt == mt
		}
		if tt != mt && tt != Wildcard {
			return false
		}
	}
}

// nextToken returns the token at or after s[i] and the index after it,
// splitting exactly where strings.Fields does so Match sees the tokens
// Group saw.
func nextToken(s string, i int) (string, int) {
	start := -1
	for i < len(s) {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		if unicode.IsSpace(r) {
			if start >= 0 {
				return s[start:i], i
			}
		} else if start < 0 {
			start = i
		}
		i += size
	}
	if start < 0 {
		return "", i
	}
	return s[start:], i
}

// drain is one run of the Drain parse tree over a sorted message set.
type drain struct {
	opt   Options
	byLen map[int]*node // token-count layer
	all   []*cluster    // in creation order, which is deterministic
}

type node struct {
	children map[string]*node
	clusters []*cluster // at a leaf
}

type cluster struct {
	tokens  []string // the template, generalised in place
	members []string
	toks    [][]string // the tokens of each member, for refine
}

// prefix is how many tokens route a message of n tokens to its leaf.
// Drain never routes on the last token, so a one-token message lives at
// the token-count node.
func (d *drain) prefix(n int) int { return min(d.opt.Depth-3, n-1) }

func (d *drain) add(msg string) {
	toks := strings.Fields(msg)
	root := d.byLen[len(toks)]
	if root == nil {
		root = &node{}
		d.byLen[len(toks)] = root
	}
	if leaf := d.search(root, toks); leaf != nil {
		if c := d.best(leaf.clusters, toks); c != nil {
			for i, t := range toks {
				if c.tokens[i] != t {
					c.tokens[i] = Wildcard
				}
			}
			c.members = append(c.members, msg)
			c.toks = append(c.toks, toks)
			return
		}
	}
	c := &cluster{tokens: slices.Clone(toks), members: []string{msg}, toks: [][]string{toks}}
	d.all = append(d.all, c)
	d.insert(root, c)
}

// search follows toks down the tree, preferring the exact branch and
// falling back to the wildcard one, and returns the leaf or nil.
func (d *drain) search(n *node, toks []string) *node {
	for _, t := range toks[:max(d.prefix(len(toks)), 0)] {
		next := n.children[t]
		if next == nil {
			next = n.children[Wildcard]
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// insert files a new cluster under the leaf for its tokens, growing the
// tree. Tokens that look variable go to the wildcard branch, and so does
// every new token once a node is full, which bounds the tree's width.
func (d *drain) insert(n *node, c *cluster) {
	for _, t := range c.tokens[:max(d.prefix(len(c.tokens)), 0)] {
		if next := n.children[t]; next != nil {
			n = next
			continue
		}
		if n.children == nil {
			n.children = map[string]*node{}
		}
		_, hasWild := n.children[Wildcard]
		key := t
		switch {
		case variable(t):
			key = Wildcard
		case hasWild && len(n.children) >= d.opt.MaxChildren:
			key = Wildcard
		case !hasWild && len(n.children)+1 >= d.opt.MaxChildren:
			key = Wildcard // the last free slot is kept for the wildcard
		}
		next := n.children[key]
		if next == nil {
			next = &node{}
			n.children[key] = next
		}
		n = next
	}
	n.clusters = append(n.clusters, c)
}

// variable reports whether a token is a value rather than a word: it holds
// a placeholder or, in input that was not masked, a digit.
func variable(t string) bool {
	return strings.Contains(t, Wildcard) || strings.ContainsAny(t, "0123456789")
}

// best returns the cluster most similar to toks if it reaches the
// threshold. Ties go to the template with more wildcards, then to the
// older cluster, as in Drain3.
func (d *drain) best(cs []*cluster, toks []string) *cluster {
	var best *cluster
	bestSim, bestParams := -1.0, -1
	for _, c := range cs {
		sim, params := similarity(c.tokens, toks)
		if sim > bestSim || sim == bestSim && params > bestParams {
			best, bestSim, bestParams = c, sim, params
		}
	}
	if bestSim < d.opt.Similarity {
		return nil
	}
	return best
}

// similarity is the share of the positions where neither the template
// nor the message holds a bare wildcard at which the two agree, and the
// number of wildcard positions. A slot Mask already replaced says nothing
// either way: counting it as disagreement, as Drain does, keeps apart
// messages that differ only in how many values an embedded timestamp had
// to lose. Partly masked tokens ("=<*>", "fn-<*>") still count, as
// literals: ignoring them too merges too much on too few words.
func similarity(tpl, toks []string) (float64, int) {
	same, words, params := 0, 0, 0
	for i, t := range tpl {
		switch {
		case t == Wildcard:
			params++
		case toks[i] == Wildcard:
		case t == toks[i]:
			same++
			words++
		default:
			words++
		}
	}
	if words == 0 {
		return 1, params
	}
	return float64(same) / float64(words), params
}

// result turns the clusters into signatures. Two clusters can end with the
// same template (they grew apart in different branches and converged);
// they are one signature, so they are merged here.
func (d *drain) result() []Cluster {
	out := make([]Cluster, 0, len(d.all))
	at := make(map[string]int, len(d.all))
	var merged []int
	for _, c := range d.all {
		t := strings.Join(c.tokens, " ")
		if k, ok := at[t]; ok {
			out[k].Members = append(out[k].Members, c.members...)
			merged = append(merged, k)
			continue
		}
		at[t] = len(out)
		out = append(out, Cluster{Template: t, Members: c.members})
	}
	for _, k := range merged {
		slices.Sort(out[k].Members)
	}
	slices.SortFunc(out, func(a, b Cluster) int { return strings.Compare(a.Template, b.Template) })
	return out
}

// refine splits every cluster on its word columns: positions where the
// members disagree and every member holds a plain word (no placeholder, no
// digit), with at most maxWordValues distinct words. Drain's similarity
// cannot tell "VM Resumed" from "VM Started", nor "Link ok" from "Link
// error": one differing word in an otherwise equal message is exactly what
// separates two events. A column with many distinct words is a free-text
// value (a user name, a table) and stays a wildcard.
func (d *drain) refine() {
	var out []*cluster
	for _, c := range d.all {
		out = append(out, split(c)...)
	}
	d.all = out
}

const maxWordValues = 4

func split(c *cluster) []*cluster {
	if len(c.members) < 2 {
		return []*cluster{c}
	}
	var cols []int
	toks := c.toks
	seen := map[string]bool{}
	for i, t := range c.tokens {
		if t != Wildcard {
			continue
		}
		clear(seen)
		word := true
		for _, mt := range toks {
			if variable(mt[i]) {
				word = false
				break
			}
			seen[mt[i]] = true
			if len(seen) > maxWordValues {
				word = false
				break
			}
		}
		if word {
			cols = append(cols, i)
		}
	}
	if len(cols) == 0 {
		return []*cluster{c}
	}
	var out []*cluster
	at := map[string]*cluster{}
	var key strings.Builder
	for k, m := range c.members {
		key.Reset()
		for _, i := range cols {
			key.WriteString(toks[k][i])
			key.WriteByte(0)
		}
		sub := at[key.String()]
		if sub == nil {
			sub = &cluster{tokens: slices.Clone(toks[k])}
			at[key.String()] = sub
			out = append(out, sub)
		} else {
			for i, t := range toks[k] {
				if sub.tokens[i] != t {
					sub.tokens[i] = Wildcard
				}
			}
		}
		sub.members = append(sub.members, m)
		sub.toks = append(sub.toks, toks[k])
	}
	return out
}
