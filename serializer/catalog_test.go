package serializer_test

import (
	"errors"
	"strings"
	"testing"

	"serialbox/serializer"
)

func TestCatalogValidate(t *testing.T) {
	widget := serializer.Product{ID: "widget", Name: "Widget"}
	st := func(id, product string) serializer.Station { return serializer.Station{ID: id, ProductID: product} }
	for _, tc := range []struct {
		name  string
		cat   serializer.Catalog
		list  string
		index int
		field string
		code  string
		want  string
	}{
		{"product without id", serializer.Catalog{Products: []serializer.Product{widget, {Name: "x"}}}, "products", 1, "ID", serializer.EINVALID, "required"},
		{"product twice", serializer.Catalog{Products: []serializer.Product{widget, widget}}, "products", 1, "ID", serializer.EINVALID, `product "widget" is configured twice`},
		{"station without id", serializer.Catalog{Products: []serializer.Product{widget}, Stations: []serializer.Station{st("", "widget")}}, "stations", 0, "ID", serializer.EINVALID, "required"},
		{"station twice", serializer.Catalog{Products: []serializer.Product{widget}, Stations: []serializer.Station{st("a", ""), st("b", ""), st("a", "")}}, "stations", 2, "ID", serializer.EINVALID, `station "a" is configured twice`},
		{"unknown product", serializer.Catalog{Products: []serializer.Product{widget}, Stations: []serializer.Station{st("a", "gadget")}}, "stations", 0, "ProductID", serializer.EUNKNOWNPRODUCT, `unknown product "gadget"`},
		{"auto batch without product", serializer.Catalog{Products: []serializer.Product{widget}, Stations: []serializer.Station{{ID: "a", AutoBatch: true}}}, "stations", 0, "ProductID", serializer.EINVALID, "opens batches automatically"},
		{"negative batch size", serializer.Catalog{Stations: []serializer.Station{{ID: "a", BatchSize: -1}}}, "stations", 0, "BatchSize", serializer.EINVALID, "-1 is out of range"},
		{"huge batch size", serializer.Catalog{Stations: []serializer.Station{{ID: "a", BatchSize: serializer.MaxBatchSize + 1}}}, "stations", 0, "BatchSize", serializer.EINVALID, "out of range"},
		{"two defaults", serializer.Catalog{Stations: []serializer.Station{{ID: "a", Default: true}, {ID: "b"}, {ID: "c", Default: true}}}, "stations", 2, "Default", serializer.EINVALID, "only one station may be the default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cat.Validate()
			var ce *serializer.CatalogError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate() = %v, want a CatalogError", err)
			}
			if ce.List != tc.list || ce.Index != tc.index || ce.Field != tc.field || !strings.Contains(ce.Reason, tc.want) {
				t.Errorf("error names %s[%d] %s: %q; want %s[%d] %s: %q", ce.List, ce.Index, ce.Field, ce.Reason, tc.list, tc.index, tc.field, tc.want)
			}
			if serializer.ErrorCode(err) != tc.code || !strings.Contains(serializer.ErrorMessage(err), tc.want) {
				t.Errorf("code %q, message %q", serializer.ErrorCode(err), serializer.ErrorMessage(err))
			}
		})
	}
	ok := serializer.Catalog{
		Products: []serializer.Product{widget, {ID: "gadget"}},
		Stations: []serializer.Station{{ID: "a", ProductID: "widget", AutoBatch: true, BatchSize: 500, Default: true}, st("b", "")},
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("a good catalog: %v", err)
	}
}
