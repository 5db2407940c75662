package store

import (
	"reflect"
	"testing"
)

// TestKeyViewHasEveryField keeps the printed view of a Key in step with
// the Key: a field added to one must be added to the other.
func TestKeyViewHasEveryField(t *testing.T) {
	key, view := reflect.TypeFor[Key](), reflect.TypeFor[keyView]()
	if key.NumField() != view.NumField() {
		t.Fatalf("Key has %d fields, its printed view %d", key.NumField(), view.NumField())
	}
	for i := range key.NumField() {
		if k, v := key.Field(i).Name, view.Field(i).Name; k != v {
			t.Errorf("field %d: Key.%s, view.%s", i, k, v)
		}
	}
}
