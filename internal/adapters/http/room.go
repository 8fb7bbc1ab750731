package http

import (
	"context"
	stdhttp "net/http"
	"time"

	"github.com/flashsale/flashsale/internal/adapters/http/api"
	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
)

// JoinQueue implements api.StrictServerInterface.
func (s *Server) JoinQueue(ctx context.Context, req api.JoinQueueRequestObject) (api.JoinQueueResponseObject, error) {
	v, err := s.app.WaitingRoom.Join(ctx, mustPrincipal(ctx), req.SaleId)
	if err != nil {
		return s.fail(ctx, err), nil
	}
	return api.JoinQueue200JSONResponse{Body: toAPIQueueStatus(v), Headers: api.JoinQueue200ResponseHeaders{CacheControl: noStore()}}, nil
}

// GetQueueStatus implements api.StrictServerInterface.
func (s *Server) GetQueueStatus(ctx context.Context, req api.GetQueueStatusRequestObject) (api.GetQueueStatusResponseObject, error) {
	v, err := s.app.WaitingRoom.Status(ctx, mustPrincipal(ctx), req.SaleId)
	if err != nil {
		return s.fail(ctx, err), nil
	}
	return api.GetQueueStatus200JSONResponse{Body: toAPIQueueStatus(v), Headers: api.GetQueueStatus200ResponseHeaders{CacheControl: noStore()}}, nil
}

func noStore() *string {
	v := "no-store"
	return &v
}

func toAPIQueueStatus(v app.QueueView) api.QueueStatus {
	p := v.Place
	out := api.QueueStatus{
		SaleId: v.SaleID, State: api.QueueState(p.State), Drawn: v.Drawn, Waiting: p.Room.Waiting,
		Admitted: p.Room.Admitted, LikelySoldOut: p.Room.LikelySoldOut && !p.Room.Closed, Ticket: v.Ticket,
	}
	if p.State == domain.QueueWaiting || p.State == domain.QueueClosed {
		pos := p.Position
		out.Position = &pos
	}
	if v.Estimate != nil {
		secs := int(max(*v.Estimate, 0) / time.Second)
		out.EstimateSeconds = &secs
	}
	if v.AdmissionToken != "" {
		out.Admission = &api.Admission{Token: v.AdmissionToken, ExpiresAt: p.AdmittedUntil}
	}
	return out
}

func toDomainWaitingRoom(w *api.WaitingRoom) domain.WaitingRoom {
	if w == nil {
		return domain.WaitingRoom{}
	}
	return domain.WaitingRoom{Enabled: w.Enabled, AdmitPerSecond: w.AdmitPerSecond, AdmissionTTL: time.Duration(w.AdmissionTtl) * time.Second,
		AutoRate: w.AutoRate != nil && *w.AutoRate}
}

func toDomainWaitingRoomPatch(w *api.WaitingRoom) *domain.WaitingRoom {
	if w == nil {
		return nil
	}
	room := toDomainWaitingRoom(w)
	return &room
}

func toAPIWaitingRoom(w domain.WaitingRoom) *api.WaitingRoom {
	if w == (domain.WaitingRoom{}) {
		return nil
	}
	out := &api.WaitingRoom{Enabled: w.Enabled, AdmitPerSecond: w.AdmitPerSecond, AdmissionTtl: int(w.AdmissionTTL / time.Second)}
	if w.AutoRate {
		out.AutoRate = &w.AutoRate
	}
	return out
}

func (p problemResponse) VisitJoinQueueResponse(w stdhttp.ResponseWriter) error { return p.write(w) }
func (p problemResponse) VisitGetQueueStatusResponse(w stdhttp.ResponseWriter) error {
	return p.write(w)
}
