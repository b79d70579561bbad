package serializer

import "fmt"

// CatalogError is a product or station of a Catalog that breaks a rule. It names the
// entry (List "products" or "stations", and its position) and the field at fault by
// its Go name, so that a configuration loader can name its own key for it.
type CatalogError struct {
	List   string // "products" or "stations"
	Index  int    // position in the list
	Field  string // the Product or Station field at fault: "ID", "ProductID", "BatchSize", "Default"
	Code   string // the error code, e.g. EUNKNOWNPRODUCT
	Reason string // what is wrong with the field, for a person
}

// Error names the entry and field and says what is wrong.
func (e *CatalogError) Error() string {
	return fmt.Sprintf("%s[%d] %s: %s", e.List, e.Index, e.Field, e.Reason)
}

// Unwrap returns the error as an *Error, so that ErrorCode and ErrorMessage see it.
func (e *CatalogError) Unwrap() error { return &Error{Code: e.Code, Message: e.Error()} }

// Validate checks the rules products and stations must keep: ids present and not
// repeated, a station's product configured, a product for stations that open batches
// automatically, batch sizes in range, at most one default station.
func (c Catalog) Validate() error {
	bad := func(list string, i int, field, code, format string, args ...any) error {
		return &CatalogError{List: list, Index: i, Field: field, Code: code, Reason: fmt.Sprintf(format, args...)}
	}
	products := make(map[string]bool, len(c.Products))
	for i, p := range c.Products {
		switch {
		case p.ID == "":
			return bad("products", i, "ID", EINVALID, "required")
		case products[p.ID]:
			return bad("products", i, "ID", EINVALID, "product %q is configured twice", p.ID)
		}
		products[p.ID] = true
	}
	stations, defaults := make(map[string]bool, len(c.Stations)), 0
	for i, st := range c.Stations {
		switch {
		case st.ID == "":
			return bad("stations", i, "ID", EINVALID, "required")
		case stations[st.ID]:
			return bad("stations", i, "ID", EINVALID, "station %q is configured twice", st.ID)
		case st.ProductID != "" && !products[st.ProductID]:
			return bad("stations", i, "ProductID", EUNKNOWNPRODUCT, "unknown product %q (station %q)", st.ProductID, st.ID)
		case st.AutoBatch && st.ProductID == "":
			return bad("stations", i, "ProductID", EINVALID, "required when the station opens batches automatically (station %q)", st.ID)
		case st.BatchSize < 0 || st.BatchSize > MaxBatchSize:
			return bad("stations", i, "BatchSize", EINVALID, "%d is out of range (0 for no limit, up to %d; station %q)", st.BatchSize, MaxBatchSize, st.ID)
		}
		stations[st.ID] = true
		if st.Default {
			if defaults++; defaults > 1 {
				return bad("stations", i, "Default", EINVALID, "only one station may be the default (station %q)", st.ID)
			}
		}
	}
	return nil
}
