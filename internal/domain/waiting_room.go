package domain

import (
	"time"

	"github.com/google/uuid"
)

// WaitingRoom is a sale's option to put purchases behind an admission: shoppers join a queue,
// and the room admits them at AdmitPerSecond, never more than the remaining stock can serve
// (CanAdmit). An admission lets its shopper buy once within AdmissionTTL.
type WaitingRoom struct {
	Enabled        bool
	AdmitPerSecond int
	AdmissionTTL   time.Duration
	// AutoRate: the room finds its rate from the purchases it sees served (lua/room_admit.lua),
	// AdmitPerSecond being its ceiling.
	AutoRate bool
}

// Bounds of a waiting room's settings.
const (
	MaxAdmitPerSecond = 100000
	MinAdmissionTTL   = 5 * time.Second
	MaxAdmissionTTL   = time.Hour
)

// Validate checks an enabled room's settings (a disabled one keeps whatever it had).
func (w WaitingRoom) Validate() error {
	if !w.Enabled {
		return nil
	}
	if w.AdmitPerSecond < 1 || w.AdmitPerSecond > MaxAdmitPerSecond {
		return ErrInvalidRequest.WithDetail("waitingRoom.admitPerSecond must be between 1 and 100000")
	}
	if w.AdmissionTTL < MinAdmissionTTL || w.AdmissionTTL > MaxAdmissionTTL {
		return ErrInvalidRequest.WithDetail("waitingRoom.admissionTtl must be between 5 and 3600 seconds")
	}
	return nil
}

// CanAdmit is the admission rule: how many more shoppers may be admitted when outstanding
// admissions (given, neither used nor expired) are live, each able to buy up to limit units, and
// remaining units are unsold. Every outstanding admission holds limit units of the remaining
// stock; one more is admitted while those held are fewer than the remaining ones, so the last
// admitted may find fewer than limit units left, never none. lua/room_admit.lua is its atomic
// copy.
func CanAdmit(remaining, outstanding, limit int) int {
	if remaining <= 0 || limit < 1 {
		return 0
	}
	servable := (remaining + limit - 1) / limit // ceil: the last one may buy fewer than limit
	return max(servable-outstanding, 0)
}

// QueueState is where a shopper stands in a sale's waiting room.
type QueueState string

const (
	QueueWaiting  QueueState = "waiting"
	QueueAdmitted QueueState = "admitted"
	QueueUsed     QueueState = "used"
	QueueExpired  QueueState = "expired"
	QueueClosed   QueueState = "closed"
)

// QueuePlace is a shopper's place in a sale's waiting room, as the room store holds it.
type QueuePlace struct {
	State QueueState
	// Position is 1 for the next to be admitted (waiting only; 0 otherwise).
	Position int
	// Key is the place's sort key: a random draw below 1 for a pre-start joiner, 1 + the arrival
	// number for a later one. It goes into the signed ticket.
	Key float64
	// AdmittedUntil is when the admission ends (admitted, used or expired).
	AdmittedUntil time.Time
	Room          RoomCounts
}

// RoomCounts are the room's figures every waiting client is told.
type RoomCounts struct {
	Waiting  int
	Admitted int
	// LikelySoldOut: the remaining stock is covered by the admissions already out.
	LikelySoldOut bool
	// Rate is the automatic rate in force (a room with AutoRate, once it ran a pass; 0: none).
	Rate int
	// Closed: the sale sold out (or ended); places are kept in case stock comes back.
	Closed bool
}

// AdmitPass is the outcome of one admission pass over a sale's room.
type AdmitPass struct {
	// Admitted are the shoppers admitted by this pass, with the end of their admission.
	Admitted []Admitted
	// Expired counts admissions that ended unused in this pass (their share is free again);
	// Lost, waiting shoppers dropped for silence.
	Expired, Lost int
	Room          RoomCounts
	// Remaining is the unsold stock the pass counted against.
	Remaining int
	// Outstanding is the number of live admissions after the pass.
	Outstanding int
	// Changed: the pass changed what waiting clients should be told (worth a queue:position).
	Changed bool
	// Closing: this pass closed the room (sold out or ended): every waiting client is told.
	Closing bool
}

// Admitted is one admission given.
type Admitted struct {
	UserID uuid.UUID
	Until  time.Time
}

// AdmissionUse is what the room store found when a purchase spent a shopper's admission.
type AdmissionUse string

const (
	AdmissionSpent    AdmissionUse = "spent"   // valid, now spent (or spent by this same idempotency key)
	AdmissionNone     AdmissionUse = "none"    // never admitted
	AdmissionExpired  AdmissionUse = "expired" // admitted, not used in time
	AdmissionUsedUp   AdmissionUse = "used"    // spent by a purchase with another idempotency key
	AdmissionNotARoom AdmissionUse = "no-room" // the sale has no room in the store
)

// AdmissionRefusal is the answer to a purchase whose buyer's admission was found as use (nil:
// spent by this purchase).
func AdmissionRefusal(use AdmissionUse) error {
	switch use {
	case AdmissionSpent:
		return nil
	case AdmissionExpired:
		return ErrAdmissionRequired.WithDetail("your admission to this sale's waiting room expired unused")
	case AdmissionUsedUp:
		return ErrAdmissionRequired.WithDetail("your admission to this sale's waiting room was used by another purchase")
	default:
		return ErrAdmissionRequired.WithDetail("this sale has a waiting room: join it and buy once admitted")
	}
}

// Live events of the waiting room.
const (
	LiveQueuePosition = "queue:position"
	LiveQueueAdmitted = "queue:admitted"
	LiveQueueClosed   = "queue:closed"
)

// QueuePositionData is the data of queue:position (to the sale's clients): the room's figures;
// a client moves its own position by the admissions since its last poll.
type QueuePositionData struct {
	Waiting       int  `json:"waiting"`
	Admitted      int  `json:"admitted"`
	LikelySoldOut bool `json:"likelySoldOut"`
	Remaining     int  `json:"remaining"`
}

// QueueAdmittedData is the data of queue:admitted (to the admitted shopper only).
type QueueAdmittedData struct {
	ExpiresAt time.Time `json:"expiresAt"`
	Token     string    `json:"token"`
}

// QueueClosedData is the data of queue:closed (to the sale's clients).
type QueueClosedData struct {
	// Reason: "sold_out" or "ended".
	Reason string `json:"reason"`
	// KeepPlace: waiting shoppers keep their place in case stock comes back (sold out only).
	KeepPlace bool `json:"keepPlace"`
}
