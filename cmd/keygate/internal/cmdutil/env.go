package cmdutil

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// EnvPrefix starts the name of every environment variable a flag reads.
const EnvPrefix = "KEYGATE_"

// The annotations a flag carries: its topic in the grouped help, and the
// environment variable it reads.
const (
	groupAnnotation = "keygate_group"
	envAnnotation   = "keygate_env"
)

// EnvName returns the environment variable flag name reads:
// KEYGATE_ and the name in upper case with '-' as '_' (--table-prefix
// reads KEYGATE_TABLE_PREFIX).
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Group files the flags names of fs under topic in the grouped help and
// makes each read its environment variable (see [EnvName] and
// [BindEnv]). It panics if a flag does not exist: a programming error
// found by the first test that builds the command.
func Group(fs *pflag.FlagSet, topic string, names ...string) {
	Topic(fs, topic, names...)
	for _, name := range names {
		_ = fs.SetAnnotation(name, envAnnotation, []string{EnvName(name)})
	}
}

// Topic files the flags names of fs under topic in the grouped help,
// without an environment variable: for flags that say what to do to a
// key, which a variable left set must never decide. It panics if a flag
// does not exist.
func Topic(fs *pflag.FlagSet, topic string, names ...string) {
	for _, name := range names {
		if fs.Lookup(name) == nil {
			panic("cmdutil.Topic: no flag --" + name)
		}
		_ = fs.SetAnnotation(name, groupAnnotation, []string{topic})
	}
}

// BindEnv gives every flag of fs that reads an environment variable and
// was not set on the command line the value of that variable, when it
// is set and not empty. A value the flag refuses is a usage error naming
// the variable. The command line wins over the environment, and the
// environment over the default.
func BindEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		env := f.Annotations[envAnnotation]
		if err != nil || f.Changed || len(env) == 0 {
			return
		}
		v := getenv(env[0])
		if v == "" {
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			// A repeatable flag takes a comma-separated list.
			if serr := sv.Replace(splitList(v)); serr != nil {
				err = Usagef("$%s: %v", env[0], serr)
			}
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = Usagef("$%s: %v", env[0], serr)
		}
	})
	return err
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// PrintGroupedFlags writes the flags of fs to w, under the topics of
// their groups in the order given (flags in no group last, under
// "Other"), each with the environment variable it reads.
func PrintGroupedFlags(w io.Writer, fs *pflag.FlagSet, topics ...string) {
	byTopic := map[string]*pflag.FlagSet{}
	var order []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		topic := "Other"
		if g := f.Annotations[groupAnnotation]; len(g) > 0 {
			topic = g[0]
		}
		set := byTopic[topic]
		if set == nil {
			set = pflag.NewFlagSet(topic, pflag.ContinueOnError)
			set.SortFlags = false
			byTopic[topic] = set
			order = append(order, topic)
		}
		c := *f
		if env := f.Annotations[envAnnotation]; len(env) > 0 {
			c.Usage += " ($" + env[0] + ")"
		}
		set.AddFlag(&c)
	})
	slices.SortStableFunc(order, func(a, b string) int {
		return topicRank(topics, a) - topicRank(topics, b)
	})
	for _, topic := range order {
		fmt.Fprintf(w, "\n%s flags:\n%s", topic, byTopic[topic].FlagUsagesWrapped(100))
	}
}

// topicRank is topic's place in topics, after them all when absent.
func topicRank(topics []string, topic string) int {
	if i := slices.Index(topics, topic); i >= 0 {
		return i
	}
	return len(topics)
}

// GroupAs is [Group] for one flag that reads env instead of the variable
// named after it, such as --server reading $KEYGATE_URL.
func GroupAs(fs *pflag.FlagSet, topic, name, env string) {
	Group(fs, topic, name)
	_ = fs.SetAnnotation(name, envAnnotation, []string{env})
}
