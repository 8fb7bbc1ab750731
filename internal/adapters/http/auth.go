package http

import (
	"context"
	"net/http"
	"time"

	"github.com/flashsale/flashsale/internal/adapters/http/api"
	"github.com/flashsale/flashsale/internal/app"
)

// Cookie names: the access token for every path, the refresh token for the auth paths only.
const (
	AccessCookie  = "fs_access"
	RefreshCookie = "fs_refresh"
	refreshPath   = "/v1/auth"
)

// CookieConfig says how auth cookies are set.
type CookieConfig struct {
	// Secure marks cookies HTTPS-only: on everywhere but local development.
	Secure bool
}

func (c CookieConfig) cookie(name, value, path string, maxAge time.Duration) *http.Cookie {
	ck := &http.Cookie{ //nolint:gosec // G124: Secure comes from COOKIE_SECURE and is always on in production (local runs are plain http)
		Name: name, Value: value, Path: path, HttpOnly: true, Secure: c.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(maxAge.Seconds()),
	}
	if maxAge <= 0 {
		ck.MaxAge = -1 // delete now
	}
	return ck
}

func (c CookieConfig) forPair(p app.TokenPair) []*http.Cookie {
	return []*http.Cookie{
		c.cookie(AccessCookie, p.AccessToken, "/", p.AccessTTL),
		c.cookie(RefreshCookie, p.RefreshToken, refreshPath, p.RefreshTTL),
	}
}

func (c CookieConfig) cleared() []*http.Cookie {
	return []*http.Cookie{c.cookie(AccessCookie, "", "/", 0), c.cookie(RefreshCookie, "", refreshPath, 0)}
}

// tokenResponse answers login and refresh: the pair as JSON and as cookies. The generated
// response types hold one Set-Cookie value; this one sets both.
type tokenResponse struct {
	body    api.TokenResponse
	cookies []*http.Cookie
}

func newTokenResponse(p app.TokenPair, cc CookieConfig) tokenResponse {
	return tokenResponse{
		body: api.TokenResponse{
			AccessToken: p.AccessToken, TokenType: api.Bearer, ExpiresIn: int(p.AccessTTL.Seconds()),
			RefreshToken: p.RefreshToken, RefreshExpiresIn: int(p.RefreshTTL.Seconds()),
		},
		cookies: cc.forPair(p),
	}
}

func (t tokenResponse) write(w http.ResponseWriter) error {
	for _, c := range t.cookies {
		http.SetCookie(w, c)
	}
	w.Header().Set("Cache-Control", "no-store")
	return api.Login200JSONResponse{Body: t.body}.VisitLoginResponse(w)
}

func (t tokenResponse) VisitLoginResponse(w http.ResponseWriter) error         { return t.write(w) }
func (t tokenResponse) VisitRefreshTokensResponse(w http.ResponseWriter) error { return t.write(w) }

// loggedOut is the 204 of logout and logout-all, clearing the cookies.
type loggedOut struct{ cookies []*http.Cookie }

func (l loggedOut) write(w http.ResponseWriter) error {
	for _, c := range l.cookies {
		http.SetCookie(w, c)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (l loggedOut) VisitLogoutResponse(w http.ResponseWriter) error    { return l.write(w) }
func (l loggedOut) VisitLogoutAllResponse(w http.ResponseWriter) error { return l.write(w) }

// Login implements api.StrictServerInterface.
func (s *Server) Login(ctx context.Context, req api.LoginRequestObject) (api.LoginResponseObject, error) {
	slug := ""
	if req.Params.XTenant != nil {
		slug = *req.Params.XTenant
	}
	pair, err := s.app.Login.Handle(ctx, app.Login{TenantSlug: slug, Email: string(req.Body.Email), Password: req.Body.Password})
	if err != nil {
		return s.fail(ctx, err), nil
	}
	return newTokenResponse(pair, s.cookies), nil
}

// RefreshTokens implements api.StrictServerInterface: the token comes from the body, or else
// from the refresh cookie.
func (s *Server) RefreshTokens(ctx context.Context, req api.RefreshTokensRequestObject) (api.RefreshTokensResponseObject, error) {
	token := ""
	if req.Body != nil && req.Body.RefreshToken != nil {
		token = *req.Body.RefreshToken
	} else if c := cookieFrom(ctx, RefreshCookie); c != "" {
		token = c
	}
	pair, err := s.app.Refresh.Handle(ctx, token)
	if err != nil {
		p := s.fail(ctx, err)
		p.cookies = s.cookies.cleared()
		return p, nil
	}
	return newTokenResponse(pair, s.cookies), nil
}

// Logout implements api.StrictServerInterface.
func (s *Server) Logout(ctx context.Context, _ api.LogoutRequestObject) (api.LogoutResponseObject, error) {
	if err := s.app.Logout.Handle(ctx, mustPrincipal(ctx)); err != nil {
		return s.fail(ctx, err), nil
	}
	return loggedOut{cookies: s.cookies.cleared()}, nil
}

// LogoutAll implements api.StrictServerInterface.
func (s *Server) LogoutAll(ctx context.Context, _ api.LogoutAllRequestObject) (api.LogoutAllResponseObject, error) {
	if err := s.app.LogoutAll.Handle(ctx, mustPrincipal(ctx)); err != nil {
		return s.fail(ctx, err), nil
	}
	return loggedOut{cookies: s.cookies.cleared()}, nil
}
