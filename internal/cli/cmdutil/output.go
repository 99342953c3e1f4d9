package cmdutil

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes/scheme"
)

// ReportGroupVersion is the apiVersion of the reports the commands print
// with -o json|yaml|jsonpath (StatusReport, DoctorReport, ...). They are
// documents of the command line, never served by an API server.
var ReportGroupVersion = schema.GroupVersion{Group: "cli.pullsecrets.dev", Version: "v1alpha1"}

// Output is the -o contract every verb shares, through cli-runtime's
// printers:
//
//   - "" (the default) and "wide": text for people (tables through
//     cli-runtime's table printer, with --no-headers where a table
//     prints); wide adds columns where there are more to show;
//   - "name": kubectl's TYPE/NAME lines of the objects concerned;
//   - "json", "yaml", "jsonpath=...", "go-template=...", and the other
//     formats of genericclioptions.PrintFlags: the command's report (or,
//     for the writing verbs, the objects written) as one object, JSON
//     indented by four spaces, as kubectl prints it.
//
// Progress lines and summaries go to stderr whenever -o is given, and
// summaries always, so that stdout holds only what was asked for.
type Output struct {
	Print     *genericclioptions.PrintFlags
	NoHeaders bool
	// human lists the extra text formats a verb takes besides "" and
	// "wide" (match and manifests scan keep "text").
	human []string
	table bool
}

// NewOutput returns the output flags; table says whether the verb prints
// a table (and so takes --no-headers); human lists other accepted text
// formats.
func NewOutput(table bool, human ...string) *Output {
	return &Output{Print: genericclioptions.NewPrintFlags(""), table: table, human: human}
}

// AddFlags adds -o (and --template, --allow-missing-template-keys,
// --show-managed-fields) and, for verbs with tables, --no-headers.
func (o *Output) AddFlags(cmd *cobra.Command) {
	o.Print.AddFlags(cmd)
	formats := append([]string{"wide"}, o.Print.AllowedFormats()...)
	cmd.Flag("output").Usage = "output format: " + strings.Join(formats, "|") + " (default: text for people)"
	if o.table {
		cmd.Flags().BoolVar(&o.NoHeaders, "no-headers", false, "print tables without their header line")
	}
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(append(formats, o.human...), cobra.ShellCompDirectiveNoFileComp))
}

// Format is the -o value.
func (o *Output) Format() string {
	if o.Print.OutputFormat == nil {
		return ""
	}
	return *o.Print.OutputFormat
}

// Validate checks -o; an unknown format is a usage error.
func (o *Output) Validate(cmd *cobra.Command) error {
	if o.Human() || o.Name() {
		return nil
	}
	if _, err := o.Print.ToPrinter(); err != nil {
		allowed := append([]string{"wide"}, o.Print.AllowedFormats()...)
		if genericclioptions.IsNoCompatiblePrinterError(err) {
			return UsageErrorf(cmd, "unknown output format %q: use %s", o.Format(), strings.Join(allowed, ", "))
		}
		return UsageErrorf(cmd, "%v", err)
	}
	return nil
}

// Given reports whether -o was given (anything but the default).
func (o *Output) Given() bool { return o.Format() != "" }

// Human reports whether the output is text for people: the default,
// "wide", or one of the verb's own text formats.
func (o *Output) Human() bool {
	f := o.Format()
	return f == "" || f == "wide" || slices.Contains(o.human, f)
}

// Wide reports -o wide.
func (o *Output) Wide() bool { return o.Format() == "wide" }

// Name reports -o name.
func (o *Output) Name() bool { return o.Format() == "name" }

// Structured reports whether the output is the report as one object
// (json, yaml, jsonpath, templates).
func (o *Output) Structured() bool { return !o.Human() && !o.Name() }

// PrintObject prints obj with the structured printer of -o.
func (o *Output) PrintObject(obj runtime.Object, w io.Writer) error {
	p, err := o.Print.ToPrinter()
	if err != nil {
		return err
	}
	return p.PrintObj(obj, w)
}

// PrintTable prints a table with cli-runtime's table printer: headers
// unless --no-headers, columns of priority 1 only with -o wide.
func (o *Output) PrintTable(t *metav1.Table, w io.Writer) error {
	return printers.NewTablePrinter(printers.PrintOptions{NoHeaders: o.NoHeaders, Wide: o.Wide()}).PrintObj(t, w)
}

// PrintReport prints a diagnostic verb's report in the format of -o: its
// notes to errOut first, then the report as one object, the names of the
// objects with problems (-o name), or text for people.
func (o *Output) PrintReport(out, errOut io.Writer, notes []string, report runtime.Object, problems []Ref, text func(io.Writer) error) error {
	for _, note := range notes {
		fmt.Fprintln(errOut, note)
	}
	switch {
	case o.Structured():
		return o.PrintObject(report, out)
	case o.Name():
		return PrintNames(problems, out)
	default:
		return text(out)
	}
}

// Ref names an object for -o name.
type Ref struct {
	Group, Kind, Namespace, Name string
}

// PrintNames prints TYPE/NAME per object, as kubectl's -o name does
// (cli-runtime's NamePrinter).
func PrintNames(refs []Ref, w io.Writer) error {
	p := &printers.NamePrinter{}
	for _, r := range refs {
		obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: r.Name}}
		obj.SetGroupVersionKind(schema.GroupVersionKind{Group: r.Group, Version: "v1", Kind: r.Kind})
		if err := p.PrintObj(obj, w); err != nil {
			return err
		}
	}
	return nil
}

// TypeMeta returns the TypeMeta of a report of kind.
func TypeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: ReportGroupVersion.String(), Kind: kind}
}

// DeepCopyJSON copies a report through JSON, for DeepCopyObject: reports
// are plain data, and their JSON is their contract.
func DeepCopyJSON[T any](in *T) *T {
	if in == nil {
		return nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		panic(fmt.Sprintf("copy %T: %v", in, err)) // reports are plain data: cannot fail
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("copy %T: %v", in, err))
	}
	return out
}

// Column is a table column: Priority 1 shows only with -o wide.
func Column(name string, priority int32) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: "string", Priority: priority}
}

// Row is a table row of strings.
func Row(cells ...string) metav1.TableRow {
	row := metav1.TableRow{Cells: make([]any, len(cells))}
	for i, c := range cells {
		row.Cells[i] = c
	}
	return row
}

// Info is where a verb's human lines go: stdout, or stderr when -o asks
// for something else there.
func (o *Output) Info(out, errOut io.Writer) io.Writer {
	if o.Human() {
		return out
	}
	return errOut
}

// PrintWritten prints, for -o name, TYPE/NAME of each object a writing
// verb wrote and, for the structured formats, a v1 List of them (Secrets
// without their data). The objects need not carry their kind.
func (o *Output) PrintWritten(objs []runtime.Object, w io.Writer) error {
	if o.Human() {
		return nil
	}
	list := &corev1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}, Items: []runtime.RawExtension{}}
	for _, obj := range objs {
		obj = obj.DeepCopyObject()
		if s, ok := obj.(*corev1.Secret); ok {
			Redact(s)
		}
		if gvks, _, err := scheme.Scheme.ObjectKinds(obj); err == nil && len(gvks) > 0 {
			obj.GetObjectKind().SetGroupVersionKind(gvks[0])
		}
		if o.Name() {
			if err := (&printers.NamePrinter{}).PrintObj(obj, w); err != nil {
				return err
			}
			continue
		}
		list.Items = append(list.Items, runtime.RawExtension{Object: obj})
	}
	if o.Name() {
		return nil
	}
	return o.PrintObject(list, w)
}

// Redact removes what holds credentials from a Secret to be printed: its
// data, and kubectl's last-applied-configuration, which holds them too.
func Redact(s *corev1.Secret) {
	s.Data, s.StringData = nil, nil
	delete(s.Annotations, corev1.LastAppliedConfigAnnotation)
}
