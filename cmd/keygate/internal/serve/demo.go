package serve

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/keygate/keygate/middleware"
)

// demo is a small API standing for the service keygate protects: an
// organization to read, and the clusters of each workspace to list and
// create, each route behind the permission it needs. Its data lives in
// memory.
type demo struct {
	mw       *middleware.Middleware
	mu       sync.Mutex
	clusters map[string][]cluster // by workspace
}

// cluster is a demo resource.
type cluster struct {
	Name      string    `json:"name"`
	Region    string    `json:"region"`
	Workspace string    `json:"workspace"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

func newDemo(mw *middleware.Middleware) *demo {
	return &demo{mw: mw, clusters: map[string][]cluster{}}
}

// register adds the demo routes to mux:
//
//	GET  /api/v1/organizations/{org}                 organization:read
//	GET  /api/v1/workspaces/{workspace}/clusters     cluster:read in {workspace}
//	POST /api/v1/workspaces/{workspace}/clusters     cluster:write in {workspace}
func (d *demo) register(mux *http.ServeMux) error {
	ws := middleware.PathValue("workspace")
	for _, r := range []struct {
		pattern   string
		workspace middleware.WorkspaceFunc
		perm      string
		h         http.HandlerFunc
	}{
		{"GET /api/v1/organizations/{org}", nil, "organization:read", d.organization},
		{"GET /api/v1/workspaces/{workspace}/clusters", ws, "cluster:read", d.listClusters},
		{"POST /api/v1/workspaces/{workspace}/clusters", ws, "cluster:write", d.createCluster},
	} {
		require, err := d.mw.Require(r.workspace, r.perm)
		if err != nil {
			return err
		}
		mux.Handle(r.pattern, d.mw.Verify(noted(require(r.h))))
	}
	return nil
}

func (d *demo) organization(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("org"), "name": "Organization " + r.PathValue("org"), "plan": "enterprise"})
}

func (d *demo) listClusters(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	list := slices.Clone(d.clusters[r.PathValue("workspace")])
	d.mu.Unlock()
	if list == nil {
		list = []cluster{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"clusters": list})
}

// clusterName is what a cluster name and a region may be.
var clusterName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (d *demo) createCluster(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name   string `json:"name"`
		Region string `json:"region"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	err := dec.Decode(&in)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("trailing data")
	}
	if err != nil || !clusterName.MatchString(in.Name) || (in.Region != "" && !clusterName.MatchString(in.Region)) {
		middleware.WriteProblem(w, r, &middleware.Problem{Type: "about:blank", Title: "Bad Request", Status: http.StatusBadRequest, Code: "invalid_request",
			Detail: `The body must be {"name": "...", "region": "..."}, names of lowercase letters, digits and dashes.`})
		return
	}
	key, _ := middleware.FromContext(r.Context())
	c := cluster{Name: in.Name, Region: in.Region, Workspace: r.PathValue("workspace"), CreatedBy: key.Name, CreatedAt: time.Now().UTC()}
	d.mu.Lock()
	d.clusters[c.Workspace] = append(d.clusters[c.Workspace], c)
	d.mu.Unlock()
	writeJSON(w, http.StatusCreated, c)
}
