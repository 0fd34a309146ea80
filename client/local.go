package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/iop-go/iop/identity"
)

// SocketPath is where an agent for home serves its local API.
func SocketPath(home string) string { return filepath.Join(home, "agent.sock") }

// maxLocalBody bounds request bodies of the local API (an image and a
// thumbnail in base64 fit easily).
const maxLocalBody = 256 << 10

// IdentityHeader names the identity a local API request acts for. It may
// be left out when the agent runs a single identity.
const IdentityHeader = "Iop-Identity"

// ServeLocal serves the agent's local API on a unix socket under its home
// directory until ctx ends. Only the owner of the home may connect (0600).
func (a *Agent) ServeLocal(ctx context.Context) error {
	return ServeLocal(ctx, a.cfg.Home, a)
}

// ServeLocal serves one local API for several agents of the same home
// (one identity each, as `iop agent --id a --id b` runs them). Requests
// choose their identity with IdentityHeader; without it, a home running a
// single identity answers for that one.
func ServeLocal(ctx context.Context, home string, agents ...*Agent) error {
	if len(agents) == 0 {
		return errors.New("local API: no agent to serve")
	}
	path := SocketPath(home)
	if len(path) >= 108 {
		return fmt.Errorf("local API socket path %q is too long for a unix socket: use a shorter --home", path)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("an agent is already running for home %s (socket %s)", home, path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("local API: %w", err)
	}
	os.Chmod(path, 0o600)
	srv := &http.Server{Handler: localMux(ctx, agents), ReadHeaderTimeout: 10 * time.Second}
	shut := make(chan struct{})
	go func() {
		defer close(shut)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err = srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		// Serve returns as soon as Shutdown starts; the answers in flight
		// (the one to `iop agent cancel`, say) are written before we return
		// and the process exits.
		<-shut
		err = nil
	}
	os.Remove(path)
	return err
}

// pickAgent finds the agent a request acts for, or the HTTP status and
// error to answer.
func pickAgent(agents []*Agent, r *http.Request) (*Agent, int, error) {
	want := r.Header.Get(IdentityHeader)
	if want == "" {
		if len(agents) == 1 {
			return agents[0], 0, nil
		}
		return nil, http.StatusBadRequest, fmt.Errorf("this agent runs %d identities: choose one with --as", len(agents))
	}
	id, err := identity.ParseID(want)
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("%s header: %w", IdentityHeader, err)
	}
	for _, a := range agents {
		if a.id == id {
			return a, 0, nil
		}
	}
	return nil, http.StatusNotFound, fmt.Errorf("%w: identity %s is not run by this agent (run it with `iop agent --id %s`, or choose another with --as)", ErrNoAgent, id.Short(), id.Short())
}

// localMux routes the local API to the agents.
func localMux(ctx context.Context, agents []*Agent) *http.ServeMux {
	mux := http.NewServeMux()
	// handle registers a route whose handler acts for one agent.
	handle := func(pattern string, h func(a *Agent, w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			a, code, err := pickAgent(agents, r)
			if err != nil {
				writeJSON(w, code, apiError{Error: err.Error()})
				return
			}
			h(a, w, r)
		})
	}
	mux.HandleFunc("GET /v1/agents", func(w http.ResponseWriter, r *http.Request) {
		out := make([]AgentStatus, 0, len(agents))
		for _, a := range agents {
			out = append(out, a.Status())
		}
		writeJSON(w, http.StatusOK, out)
	})
	handle("GET /v1/status", func(a *Agent, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Status())
	})
	handle("POST /v1/profile", func(a *Agent, w http.ResponseWriter, r *http.Request) {
		var ch ProfileChange
		if !readJSON(w, r, &ch) {
			return
		}
		sp, err := a.SetProfile(r.Context(), ch)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ViewOf(sp))
	})
	handle("POST /v1/services/add", func(a *Agent, w http.ResponseWriter, r *http.Request) {
		var req struct{ Names []string }
		if !readJSON(w, r, &req) {
			return
		}
		if err := a.AddServices(r.Context(), req.Names...); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, a.Status())
	})
	handle("POST /v1/services/remove", func(a *Agent, w http.ResponseWriter, r *http.Request) {
		var req struct{ Name string }
		if !readJSON(w, r, &req) {
			return
		}
		if err := a.RemoveService(r.Context(), req.Name); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, a.Status())
	})
	handle("POST /v1/cancel", func(a *Agent, w http.ResponseWriter, r *http.Request) {
		var req struct{ Redirect string }
		if !readJSON(w, r, &req) {
			return
		}
		var target *identity.ID
		if req.Redirect != "" {
			id, err := identity.ParseID(req.Redirect)
			if err != nil {
				writeError(w, fmt.Errorf("redirect: %w", err))
				return
			}
			target = &id
		}
		if err := a.CancelHosting(r.Context(), target); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, a.Status())
	})
	handle("GET /v1/listen", func(a *Agent, w http.ResponseWriter, r *http.Request) {
		// A listen stream ends with the request or with the agent.
		lctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
		a.serveListen(w, r.WithContext(lctx))
	})
	handle("GET /v1/conn/{id}", (*Agent).serveConn)
	registerRelationAPI(ctx, handle)
	return mux
}

type apiError struct {
	Error  string `json:"error"`
	Status string `json:"status,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	e := apiError{Error: err.Error()}
	var se *StatusError
	if errors.As(err, &se) {
		e.Status = se.Status.String()
	}
	code := http.StatusBadRequest
	if errors.Is(err, ErrOffline) {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, e)
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLocalBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "bad request: " + err.Error()})
		return false
	}
	return true
}

// LocalClient talks to a running agent through its local API.
type LocalClient struct {
	home string
	id   identity.ID // the identity requests act for; zero: the agent's only one
	http *http.Client
}

// ErrNoAgent reports that no agent runs for a home directory.
var ErrNoAgent = errors.New("no agent is running for this home")

// NewLocalClient returns a client of the agent serving home.
func NewLocalClient(home string) *LocalClient {
	path := SocketPath(home)
	return &LocalClient{home: home, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}}
}

// As returns a client whose requests act for identity id, for agents that
// run several identities.
func (c *LocalClient) As(id identity.ID) *LocalClient {
	cc := *c
	cc.id = id
	return &cc
}

// newRequest builds a request to the agent, naming the client's identity.
func (c *LocalClient) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, body)
	if err != nil {
		return nil, err
	}
	if !c.id.IsZero() {
		req.Header.Set(IdentityHeader, c.id.String())
	}
	return req, nil
}

func (c *LocalClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w %s: start one with `iop agent --home %s --server <node address>`", ErrNoAgent, c.home, c.home)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("agent answered %s", resp.Status)
	}
	return json.Unmarshal(data, out)
}

// Status returns the agent's status.
func (c *LocalClient) Status(ctx context.Context) (*AgentStatus, error) {
	var s AgentStatus
	return &s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Agents returns the status of every identity the agent runs.
func (c *LocalClient) Agents(ctx context.Context) ([]AgentStatus, error) {
	var s []AgentStatus
	return s, c.do(ctx, http.MethodGet, "/v1/agents", nil, &s)
}

// SetProfile changes the agent's profile.
func (c *LocalClient) SetProfile(ctx context.Context, ch ProfileChange) (*ProfileView, error) {
	var v ProfileView
	return &v, c.do(ctx, http.MethodPost, "/v1/profile", ch, &v)
}

// AddServices enables application services.
func (c *LocalClient) AddServices(ctx context.Context, names ...string) (*AgentStatus, error) {
	var s AgentStatus
	return &s, c.do(ctx, http.MethodPost, "/v1/services/add", struct{ Names []string }{names}, &s)
}

// CancelHosting ends the hosting agreement (redirect: the new server's
// network ID, or "") and stops the agent.
func (c *LocalClient) CancelHosting(ctx context.Context, redirect string) (*AgentStatus, error) {
	var s AgentStatus
	return &s, c.do(ctx, http.MethodPost, "/v1/cancel", struct{ Redirect string }{redirect}, &s)
}

// RemoveService disables an application service.
func (c *LocalClient) RemoveService(ctx context.Context, name string) (*AgentStatus, error) {
	var s AgentStatus
	return &s, c.do(ctx, http.MethodPost, "/v1/services/remove", struct{ Name string }{name}, &s)
}
