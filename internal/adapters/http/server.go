package http

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/flashsale/flashsale/internal/adapters/http/api"
	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// ReadinessCheck is a dependency GET /readyz pings. A failure is shown by the check's name and,
// if its error has a Reason() string, that reason; never the error itself, which may carry
// hosts, users or driver messages (it is logged).
type ReadinessCheck interface {
	Name() string
	Ping(ctx context.Context) error
}

// Server implements the generated strict server on the use-cases: decode, call one use-case,
// map the result.
type Server struct {
	app     *app.Application
	log     *slog.Logger
	checks  []ReadinessCheck
	timeout time.Duration
	cookies CookieConfig
}

var _ api.StrictServerInterface = (*Server)(nil)

// NewServer builds the handlers; checks are what /readyz pings.
func NewServer(a *app.Application, log *slog.Logger, cookies CookieConfig, checks ...ReadinessCheck) *Server {
	return &Server{app: a, log: log, checks: checks, timeout: 2 * time.Second, cookies: cookies}
}

func (s *Server) fail(ctx context.Context, err error) problemResponse {
	return problemResponse{problem: problemOf(ctx, s.log, err)}
}

// tenantOf is the caller's tenant: from the token when there is one, else the X-Tenant header.
func (s *Server) tenantOf(ctx context.Context, header *api.TenantHeader) (uuid.UUID, error) {
	if p, ok := principalFrom(ctx); ok {
		return p.TenantID, nil
	}
	slug := ""
	if header != nil {
		slug = *header
	}
	t, err := s.app.Tenants.BySlug(ctx, slug)
	return t.ID, err
}

func mustPrincipal(ctx context.Context) domain.Principal {
	p, ok := principalFrom(ctx)
	if !ok { // the validator lets no unauthenticated request through to a secured operation
		panic("secured operation reached without a principal")
	}
	return p
}

// GetHealth implements api.StrictServerInterface.
func (s *Server) GetHealth(context.Context, api.GetHealthRequestObject) (api.GetHealthResponseObject, error) {
	return api.GetHealth200JSONResponse{Status: api.HealthStatusOk}, nil
}

// GetReadiness implements api.StrictServerInterface.
func (s *Server) GetReadiness(ctx context.Context, _ api.GetReadinessRequestObject) (api.GetReadinessResponseObject, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	checks := map[string]string{}
	var failed, logged []string
	for _, c := range s.checks {
		if err := c.Ping(ctx); err != nil {
			reason := "unavailable"
			var r interface{ Reason() string }
			if errors.As(err, &r) {
				reason = r.Reason()
			}
			checks[c.Name()] = reason
			failed = append(failed, c.Name()+" "+reason)
			logged = append(logged, c.Name()+": "+err.Error())
			continue
		}
		checks[c.Name()] = "ok"
	}
	if len(failed) > 0 {
		s.log.WarnContext(ctx, "not ready", "failed", logged)
		return problemResponse{problem: newProblem(ctx, codeUnavailable, "not ready: "+strings.Join(failed, ", "))}, nil
	}
	return api.GetReadiness200JSONResponse{Status: api.HealthStatusOk, Checks: &checks}, nil
}

// Register implements api.StrictServerInterface.
func (s *Server) Register(ctx context.Context, req api.RegisterRequestObject) (api.RegisterResponseObject, error) {
	slug := ""
	if req.Params.XTenant != nil {
		slug = *req.Params.XTenant
	}
	u, err := s.app.Register.Handle(ctx, app.Register{TenantSlug: slug, Email: string(req.Body.Email), Password: req.Body.Password})
	if err != nil {
		return s.fail(ctx, err), nil
	}
	return api.Register201JSONResponse(toAPIUser(u)), nil
}

// GetMe implements api.StrictServerInterface.
func (s *Server) GetMe(ctx context.Context, _ api.GetMeRequestObject) (api.GetMeResponseObject, error) {
	u, err := s.app.Me.Handle(ctx, mustPrincipal(ctx))
	if err != nil {
		return s.fail(ctx, err), nil
	}
	return api.GetMe200JSONResponse{Body: toAPIUser(u)}, nil
}

// ListSales implements api.StrictServerInterface.
func (s *Server) ListSales(ctx context.Context, req api.ListSalesRequestObject) (api.ListSalesResponseObject, error) {
	tenantID, err := s.tenantOf(ctx, req.Params.XTenant)
	if err != nil {
		return s.fail(ctx, err), nil
	}
	q := app.ListSales{TenantID: tenantID, Limit: 50}
	if req.Params.Limit != nil {
		q.Limit = *req.Params.Limit
	}
	if req.Params.Status != nil {
		st := domain.SaleStatus(*req.Params.Status)
		q.Status = &st
	}
	views, err := s.app.ListSales.Handle(ctx, q)
	if err != nil {
		return s.fail(ctx, err), nil
	}
	items := make([]api.Sale, len(views))
	for i, v := range views {
		items[i] = toAPISale(v)
	}
	return api.ListSales200JSONResponse{Items: items}, nil
}

// GetSale implements api.StrictServerInterface.
func (s *Server) GetSale(ctx context.Context, req api.GetSaleRequestObject) (api.GetSaleResponseObject, error) {
	v, err := s.sale(ctx, req.Params.XTenant, req.SaleId)
	if err != nil {
		return s.fail(ctx, err), nil
	}
	return api.GetSale200JSONResponse(toAPISale(v)), nil
}

// GetInventory implements api.StrictServerInterface.
func (s *Server) GetInventory(ctx context.Context, req api.GetInventoryRequestObject) (api.GetInventoryResponseObject, error) {
	v, err := s.sale(ctx, req.Params.XTenant, req.SaleId)
	if err != nil {
		return s.fail(ctx, err), nil
	}
	return api.GetInventory200JSONResponse{
		SaleId: v.Sale.ID, TotalStock: v.Sale.TotalStock, Remaining: v.Inventory.Remaining,
		Status: api.SaleStatus(v.Status),
	}, nil
}

func (s *Server) sale(ctx context.Context, tenant *api.TenantHeader, saleID uuid.UUID) (app.SaleView, error) {
	tenantID, err := s.tenantOf(ctx, tenant)
	if err != nil {
		return app.SaleView{}, err
	}
	return s.app.GetSale.Handle(ctx, tenantID, saleID)
}

// PlaceOrder implements api.StrictServerInterface.
func (s *Server) PlaceOrder(ctx context.Context, req api.PlaceOrderRequestObject) (api.PlaceOrderResponseObject, error) {
	pg, _ := ctx.Value(purchaseGateKey{}).(purchaseGate)
	res, err := s.app.PlaceOrder.Handle(ctx, app.PlaceOrder{
		Principal: mustPrincipal(ctx), SaleID: req.SaleId, Quantity: req.Body.Quantity,
		IdempotencyKey: req.Params.IdempotencyKey, Gate: pg.gate,
	})
	if d := res.Rate; d != nil && pg.header != nil {
		setRateLimit(pg.header, pg.gate.PerMinute, d.Remaining, d.ResetAfter, d.RetryAfter, d.Allowed)
	}
	var replayed *bool
	if res.Replayed {
		replayed = &res.Replayed
	}
	if err != nil {
		p := s.fail(ctx, err)
		if replayed != nil {
			p.header = http.Header{"Idempotent-Replayed": {"true"}}
		}
		return p, nil
	}
	return api.PlaceOrder202JSONResponse{
		Body:    toAPIOrder(res.Order),
		Headers: api.PlaceOrder202ResponseHeaders{Location: orderLocation(res.Order.ID), IdempotentReplayed: replayed},
	}, nil
}

// ListOrders implements api.StrictServerInterface.
func (s *Server) ListOrders(ctx context.Context, req api.ListOrdersRequestObject) (api.ListOrdersResponseObject, error) {
	q := app.ListOrders{Principal: mustPrincipal(ctx), Limit: 20}
	if req.Params.Limit != nil {
		q.Limit = *req.Params.Limit
	}
	if req.Params.Cursor != nil {
		after, err := decodeCursor(*req.Params.Cursor)
		if err != nil {
			return s.fail(ctx, err), nil
		}
		q.After = &after
	}
	page, err := s.app.ListOrders.Handle(ctx, q)
	if err != nil {
		return s.fail(ctx, err), nil
	}
	list := api.OrderList{Items: make([]api.Order, len(page.Orders))}
	for i, o := range page.Orders {
		list.Items[i] = toAPIOrder(o)
	}
	if page.Next != nil {
		c := encodeCursor(*page.Next)
		list.NextCursor = &c
	}
	return api.ListOrders200JSONResponse{Body: list}, nil
}

// GetOrder implements api.StrictServerInterface.
func (s *Server) GetOrder(ctx context.Context, req api.GetOrderRequestObject) (api.GetOrderResponseObject, error) {
	o, err := s.app.GetOrder.Handle(ctx, mustPrincipal(ctx), req.OrderId)
	if err != nil {
		return s.fail(ctx, err), nil
	}
	return api.GetOrder200JSONResponse{Body: toAPIOrder(o)}, nil
}

// CreateSale implements api.StrictServerInterface.
func (s *Server) CreateSale(ctx context.Context, req api.CreateSaleRequestObject) (api.CreateSaleResponseObject, error) {
	b := req.Body
	shards := 1
	if b.Shards != nil {
		shards = *b.Shards
	}
	v, err := s.app.CreateSale.Handle(ctx, app.CreateSale{
		Principal: mustPrincipal(ctx), Name: b.Name, PriceCents: b.PriceCents, Currency: b.Currency,
		TotalStock: b.TotalStock, PerUserLimit: b.PerUserLimit, StartsAt: b.StartsAt, EndsAt: b.EndsAt,
		Shards: shards, WaitingRoom: toDomainWaitingRoom(b.WaitingRoom),
	})
	if err != nil {
		return s.fail(ctx, err), nil
	}
	loc := "/v1/sales/" + v.Sale.ID.String()
	return api.CreateSale201JSONResponse{Body: toAPISale(v), Headers: api.CreateSale201ResponseHeaders{Location: &loc}}, nil
}

// UpdateSale implements api.StrictServerInterface.
func (s *Server) UpdateSale(ctx context.Context, req api.UpdateSaleRequestObject) (api.UpdateSaleResponseObject, error) {
	b := req.Body
	v, err := s.app.UpdateSale.Handle(ctx, app.UpdateSale{
		Principal: mustPrincipal(ctx), SaleID: req.SaleId,
		Patch: domain.SalePatch{
			Name: b.Name, PriceCents: b.PriceCents, Currency: b.Currency, TotalStock: b.TotalStock,
			PerUserLimit: b.PerUserLimit, StartsAt: b.StartsAt, EndsAt: b.EndsAt,
			WaitingRoom: toDomainWaitingRoomPatch(b.WaitingRoom),
		},
	})
	if err != nil {
		return s.fail(ctx, err), nil
	}
	return api.UpdateSale200JSONResponse{Body: toAPISale(v)}, nil
}

// ListDeadLetters implements api.StrictServerInterface.
func (s *Server) ListDeadLetters(ctx context.Context, req api.ListDeadLettersRequestObject) (api.ListDeadLettersResponseObject, error) {
	limit := 100
	if req.Params.Limit != nil {
		limit = *req.Params.Limit
	}
	dls, err := s.app.DeadLetters.Handle(ctx, mustPrincipal(ctx), limit)
	if err != nil {
		return s.fail(ctx, err), nil
	}
	list := api.DeadLetterList{Items: make([]api.DeadLetter, len(dls))}
	for i, dl := range dls {
		list.Items[i] = toAPIDeadLetter(dl)
	}
	return api.ListDeadLetters200JSONResponse{Body: list}, nil
}

// RetryDeadLetter implements api.StrictServerInterface.
func (s *Server) RetryDeadLetter(ctx context.Context, req api.RetryDeadLetterRequestObject) (api.RetryDeadLetterResponseObject, error) {
	o, err := s.app.RetryDeadLetter.Handle(ctx, mustPrincipal(ctx), req.OrderId)
	if err != nil {
		return s.fail(ctx, err), nil
	}
	return api.RetryDeadLetter202JSONResponse{
		Body: toAPIOrder(o), Headers: api.RetryDeadLetter202ResponseHeaders{Location: orderLocation(o.ID)},
	}, nil
}

func orderLocation(id uuid.UUID) *string {
	loc := "/v1/orders/" + id.String()
	return &loc
}

// Order cursors are opaque to clients: base64url of "<created-at µs>.<order id>".
func encodeCursor(c ports.OrderCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "." + c.ID.String()))
}

func decodeCursor(s string) (ports.OrderCursor, error) {
	bad := domain.ErrInvalidRequest.WithDetail("query parameter cursor: not a cursor this server issued")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return ports.OrderCursor{}, bad
	}
	us, id, ok := strings.Cut(string(raw), ".")
	micros, err1 := strconv.ParseInt(us, 10, 64)
	orderID, err2 := uuid.Parse(id)
	if !ok || err1 != nil || err2 != nil {
		return ports.OrderCursor{}, bad
	}
	return ports.OrderCursor{CreatedAt: time.UnixMicro(micros).UTC(), ID: orderID}, nil
}

func toAPIUser(u domain.User) api.User {
	return api.User{Id: u.ID, Email: openapi_types.Email(u.Email), Role: api.Role(u.Role), TenantId: u.TenantID, CreatedAt: u.CreatedAt}
}

func toAPISale(v app.SaleView) api.Sale {
	s := v.Sale
	return api.Sale{
		Id: s.ID, Name: s.Name, PriceCents: s.PriceCents, Currency: s.Currency, TotalStock: s.TotalStock,
		Remaining: v.Inventory.Remaining, PerUserLimit: s.PerUserLimit, Shards: s.ShardCount(), StartsAt: s.StartsAt, EndsAt: s.EndsAt,
		Status: api.SaleStatus(v.Status), CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
		WaitingRoom: toAPIWaitingRoom(s.WaitingRoom),
	}
}

func toAPIOrder(o domain.Order) api.Order {
	out := api.Order{
		Id: o.ID, SaleId: o.SaleID, UserId: o.UserID, Quantity: o.Quantity,
		Status: api.OrderStatus(o.Status), CreatedAt: o.CreatedAt,
	}
	if o.Currency != "" {
		amount, currency := o.AmountCents, o.Currency
		out.AmountCents, out.Currency = &amount, &currency
	}
	return out
}

func toAPIDeadLetter(dl domain.DeadLetter) api.DeadLetter {
	r := dl.Reservation
	out := api.DeadLetter{
		OrderId: r.OrderID, SaleId: r.SaleID, UserId: r.UserID, Quantity: r.Quantity, CreatedAt: r.CreatedAt,
		LastError: dl.LastError, Attempts: dl.Attempts,
	}
	if !dl.FailedAt.IsZero() {
		out.FailedAt = &dl.FailedAt
	}
	return out
}

// GetSaleStats implements api.StrictServerInterface.
func (s *Server) GetSaleStats(ctx context.Context, req api.GetSaleStatsRequestObject) (api.GetSaleStatsResponseObject, error) {
	st, err := s.app.GetSaleStats.Handle(ctx, mustPrincipal(ctx), req.SaleId)
	if err != nil {
		return s.fail(ctx, err), nil
	}
	out := api.SaleStats{
		SaleId: req.SaleId, Orders: st.Orders, Units: st.Units, RevenueCents: st.RevenueCents,
		FirstOrderAt: st.FirstOrderAt, LastOrderAt: st.LastOrderAt,
	}
	if st.Currency != "" {
		out.Currency = &st.Currency
	}
	return api.GetSaleStats200JSONResponse{Body: out}, nil
}

// IssueWebSocketTicket implements api.StrictServerInterface.
func (s *Server) IssueWebSocketTicket(ctx context.Context, _ api.IssueWebSocketTicketRequestObject) (api.IssueWebSocketTicketResponseObject, error) {
	ticket, ttl, err := s.app.IssueTicket.Handle(ctx, mustPrincipal(ctx))
	if err != nil {
		return s.fail(ctx, err), nil
	}
	return api.IssueWebSocketTicket201JSONResponse{Body: api.WebSocketTicket{Ticket: ticket, ExpiresIn: int(ttl.Seconds())}}, nil
}
