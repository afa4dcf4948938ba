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
// Messages with different token counts are not merged by Drain. With the defaults the
// first token must also agree (or be a wildcard), because Drain routes on
// it before comparing. After Drain, a cluster is split again on every slot
// that holds only words (plain, or with a masked part: "SOCKS<*>"), and at
// most maxWordValues distinct ones: "lookup failed: user <*> not found"
// and "lookup failed: order <*> not found" stay two signatures, as do
// "Link ok" and "Link error", because one differing word is what usually
// tells two events apart. A slot with more distinct words than that (user
// names, table names) is a free-text value and becomes "<*>". On the
// loghub-2k benchmark this choice is worth more than any similarity
// threshold (see BENCHMARKS.md). Finally, clusters whose values take a
// varying number of tokens are joined, with a Gap where they differ in
// length (see joinLengths), so that exception is the one place where
// members of a cluster have different token counts.
func Group(masked []string, opt Options) []Cluster {
	msgs := slices.Clone(masked)
	slices.Sort(msgs)
	msgs = slices.Compact(msgs)
	d := drain{opt: opt.normalized(), byLen: map[int]*node{}}
	for _, m := range msgs {
		d.add(m)
	}
	d.refine()
	d.joinLengths()
	return d.result()
}

// Match reports whether a masked message fits a template produced by
// Group: token by token, each equal to the template's or matched by a
// "<*>" template token, with a Gap template token matching any run of
// tokens, none included. Unlike Group it never generalises a template, so
// a streaming caller can attribute new messages to known signatures
// without re-clustering; messages that match nothing are new signatures
// to hand to Group.
func Match(template, masked string) bool {
	if strings.Contains(template, Gap) {
		return matchGaps(strings.Fields(template), strings.Fields(masked))
	}
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

// matchGaps is Match for a template with Gaps: glob matching over tokens,
// where a Gap backtracks to absorb one more token each time the rest
// fails. Its cost is bounded by the product of the token counts.
func matchGaps(tpl, msg []string) bool {
	t, m := 0, 0
	star, mark := -1, 0
	for m < len(msg) {
		switch {
		case t < len(tpl) && tpl[t] == Gap:
			star, mark = t, m
			t++
		case t < len(tpl) && (tpl[t] == Wildcard || tpl[t] == msg[m]):
			t, m = t+1, m+1
		case star >= 0:
			mark++
			t, m = star+1, mark
		default:
			return false
		}
	}
	for t < len(tpl) && tpl[t] == Gap {
		t++
	}
	return t == len(tpl)
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
//
// It is called for every pair of tokens align compares, so it scans the
// bytes itself: strings.ContainsAny builds its byte set on every call,
// which made it most of the cost of grouping ten thousand messages.
func variable(t string) bool {
	for i := 0; i < len(t); i++ {
		if c := t[i]; c >= '0' && c <= '9' {
			return true
		}
	}
	return strings.Contains(t, Wildcard)
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
// members disagree and every member holds a word (see named), with at
// most maxWordValues distinct words. Drain's similarity
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

// maxWordValues is the most distinct words a slot may hold and still
// split a signature. On loghub-2k the mean GA was 0.904 at 2, 0.955-0.957
// at 3 to 5 and 0.93 at 6 and 8: 4 is the middle of that plateau. Too low
// merges events that differ in one of a few states ("VM Started",
// "Paused", "Resumed"), too high splits free text with few values.
const maxWordValues = 4

// split is refine for one cluster.

// named reports whether a token can tell two events apart: a plain word,
// or a word with a masked part ("SOCKS<*>"), but not a value alone or in
// punctuation ("<*>", "(<*>)", "=<*>").
func named(t string) bool {
	if strings.ContainsAny(t, "0123456789") {
		return false
	}
	for _, r := range strings.ReplaceAll(t, Wildcard, "") {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}

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
		word, plain := true, false
		for _, mt := range toks {
			if !named(mt[i]) {
				word = false
				break
			}
			plain = plain || !variable(mt[i])
			seen[mt[i]] = true
			if len(seen) > maxWordValues {
				word = false
				break
			}
		}
		if word && plain {
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

// Gap in a template stands for any number of tokens, none included. It
// appears where Group joined messages whose values take a varying number
// of tokens: "<*> bytes sent" and "<*> bytes (<*> KB) sent" are one
// signature, "<*> bytes <*><*> sent". It is spelt with Wildcards so that
// whatever splits a signature on Wildcard to find its literal text (the
// Kibana query) needs no change.
const Gap = "<*><*>"

// joinLengths merges clusters of different token counts that are one
// event whose values vary in length. Two clusters join when their
// templates align (same first-token route) so that every token left over
// on either side is a value or a unit right after one: "(<*> KB)" and
// "<<*> sec" are left-over values, "invalid user" is not, so "Failed
// password for invalid user <*>" never joins "Failed password for <*>".
// The test is symmetric and the join is transitive (union-find), so the
// result does not depend on the order clusters were made in.
func (d *drain) joinLengths() {
	buckets := map[string][]int{}
	for i, c := range d.all {
		key := ""
		if len(c.tokens) > 0 {
			key = c.tokens[0]
			if variable(key) {
				key = Wildcard
			}
		}
		buckets[key] = append(buckets[key], i)
	}
	views := make([][]string, len(d.all))
	for i, c := range d.all {
		views[i] = view(c)
	}
	parent := make([]int, len(d.all))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	joined := false
	for _, idx := range buckets {
		for x, i := range idx {
			for _, j := range idx[x+1:] {
				a, b := views[i], views[j]
				if len(a) == len(b) || find(i) == find(j) {
					continue
				}
				if len(a) > len(b) {
					a, b = b, a
				}
				if _, ok := align(a, b); ok {
					parent[find(i)] = find(j)
					joined = true
				}
			}
		}
	}
	if !joined {
		return
	}
	groups := map[int][]*cluster{}
	var roots []int
	for i, c := range d.all {
		r := find(i)
		if groups[r] == nil {
			roots = append(roots, r)
		}
		groups[r] = append(groups[r], c)
	}
	out := make([]*cluster, 0, len(roots))
	for _, r := range roots {
		out = append(out, joinClusters(groups[r]))
	}
	d.all = out
}

// freeText stands, in the view joinLengths aligns, for a template slot
// that Drain generalised over plain words ("user=root", "user=admin"):
// such a slot is a word, not a value, and may not be left over.
const freeText = "\x00"

// view returns c's template with every wildcard slot whose members all
// hold words replaced by freeText.
func view(c *cluster) []string {
	v := c.tokens
	for i, t := range c.tokens {
		if t != Wildcard || slices.ContainsFunc(c.toks, func(m []string) bool { return variable(m[i]) }) {
			continue
		}
		if &v[0] == &c.tokens[0] {
			v = slices.Clone(c.tokens)
		}
		v[i] = freeText
	}
	return v
}

// joinClusters merges clusters joinLengths found to be one event. The
// template starts from the biggest cluster and folds in the others in a
// fixed order, so it depends only on the set of clusters.
func joinClusters(cs []*cluster) *cluster {
	if len(cs) == 1 {
		return cs[0]
	}
	slices.SortFunc(cs, func(a, b *cluster) int {
		if n := len(b.members) - len(a.members); n != 0 {
			return n
		}
		if n := len(a.tokens) - len(b.tokens); n != 0 {
			return n
		}
		return slices.Compare(a.tokens, b.tokens)
	})
	out := &cluster{tokens: slices.Clone(cs[0].tokens)}
	for _, c := range cs {
		if c != cs[0] {
			out.tokens = fold(out.tokens, c.tokens)
		}
		out.members = append(out.members, c.members...)
		out.toks = append(out.toks, c.toks...)
	}
	slices.Sort(out.members)
	return out
}

// fold generalises template tpl to cover toks too: aligned tokens that
// differ become Wildcard, and every run left over on either side becomes
// one Gap.
func fold(tpl, toks []string) []string {
	pairs, _ := align(tpl, toks)
	var out []string
	gap := func() {
		if len(out) == 0 || out[len(out)-1] != Gap {
			out = append(out, Gap)
		}
	}
	i, j := 0, 0
	for _, p := range append(pairs, [2]int{len(tpl), len(toks)}) {
		if i < p[0] || j < p[1] {
			gap()
		}
		i, j = p[0], p[1]
		if i == len(tpl) {
			break
		}
		if tpl[i] == toks[j] {
			out = append(out, tpl[i])
		} else {
			out = append(out, Wildcard)
		}
		i, j = i+1, j+1
	}
	return out
}

// align finds the longest common subsequence of a and b, where equal
// tokens and any two values correspond, and returns the corresponding
// positions. ok reports whether every token left over is a value or a
// unit: a word right after a value on its own side.
func align(a, b []string) (pairs [][2]int, ok bool) {
	n, m := len(a), len(b)
	// Which tokens are values, once per token rather than once per pair.
	va, vb := make([]bool, n), make([]bool, m)
	for i, t := range a {
		va[i] = variable(t)
	}
	for j, t := range b {
		vb[j] = variable(t)
	}
	same := func(i, j int) bool {
		x, y := a[i], b[j]
		return x != Gap && y != Gap && (x == y || va[i] && vb[j])
	}
	w := m + 1
	lcs := make([]int32, (n+1)*w)
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if same(i, j) {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	ok = true
	words := 0
	leftover := func(s []string, k int) {
		if !variable(s[k]) && (k == 0 || !variable(s[k-1]) || !unit(s[k])) {
			ok = false
		}
	}
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case same(i, j):
			if !va[i] {
				words++
			}
			pairs = append(pairs, [2]int{i, j})
			i, j = i+1, j+1
		case lcs[(i+1)*w+j] >= lcs[i*w+j+1]:
			leftover(a, i)
			i++
		default:
			leftover(b, j)
			j++
		}
	}
	for ; i < n; i++ {
		leftover(a, i)
	}
	for ; j < m; j++ {
		leftover(b, j)
	}
	return pairs, ok && words > 0
}

// unit reports whether a word left over after a value can be its unit:
// at most three letters, then at most one closing bracket or comma ("ms",
// "sec", "KB)"). A longer word, or one that ends with ':' or '=', names
// something and keeps two events apart ("src:", "user=root", "from").
func unit(t string) bool {
	n := 0
	for n < len(t) && class[t[n]]&cAlpha != 0 {
		n++
	}
	if n == 0 || n > 3 {
		return false
	}
	switch t[n:] {
	case "", ")", "]", ",":
		return true
	}
	return false
}
