package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultSessionPrefix is the default [SessionsConfig.Prefix].
const DefaultSessionPrefix = "keygate:console:"

// SessionsConfig configures a [Sessions]. It is plain data, read once by
// [NewSessions].
type SessionsConfig struct {
	// Client is the Redis client (any goredis.UniversalClient). Required.
	Client goredis.UniversalClient
	// Prefix starts the name of every Redis key the store writes. Empty
	// means DefaultSessionPrefix. Instances that share the console's
	// sessions must share it; unrelated deployments on one Redis must not.
	Prefix string
}

// Sessions keeps the admin console's sessions and used nonces in Redis,
// so that every instance of a service sharing the Redis serves every
// session: give it to console.Config.Sessions. It implements
// console.SessionStore (by its methods; the package does not import the
// console) and passes the console's conformance suite.
//
// Its keys, after the prefix:
//
//   - "s:<hex>", a hash per session (owner, data, flash, expires), under
//     the hex of the SHA-256 of the session's id (the console never gives
//     the id itself), expiring with the session;
//   - "o:<owner>", a sorted set per key (or host user) of its sessions'
//     ids by time of creation, for the bound per key, expiring with the
//     last of them;
//   - "n:<hex>", per used nonce (a SHA-256), set with SET NX so that of
//     two instances using one nonce exactly one succeeds, expiring when
//     its form can no longer be sent.
//
// Touching a session, and setting or taking its flash message, are small
// scripts on the session's one key, so that they never bring back a
// session that ended and a message is taken once; they work on a Redis
// Cluster too. Creating a session adds it to its owner's set and then
// ends the oldest of the owner's sessions beyond the bound, reading the
// set after adding to it, so that concurrent sign-ins of one key end the
// same oldest sessions and leave the newest.
//
// A Sessions is safe for concurrent use.
type Sessions struct {
	client goredis.UniversalClient
	prefix string
}

// NewSessions returns a Sessions for cfg, or an error wrapping [ErrConfig]
// when cfg.Client is nil. It does not connect to Redis.
func NewSessions(cfg SessionsConfig) (*Sessions, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: SessionsConfig.Client is required", ErrConfig)
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultSessionPrefix
	}
	return &Sessions{client: cfg.Client, prefix: prefix}, nil
}

// The scripts of Sessions, each on one key: a session's hash.
var (
	// touchScript sets the expiry of a session live at ARGV[1] to ARGV[2]
	// (Unix microseconds), its key expiring ARGV[3] ms from now.
	touchScript = goredis.NewScript(`
local e = redis.call('HGET', KEYS[1], 'expires')
if not e or tonumber(e) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'expires', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)
	// setFlashScript sets the flash message of a session that exists.
	setFlashScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'flash', ARGV[1])
return 1`)
	// takeFlashScript clears the flash message if it is ARGV[1].
	takeFlashScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'flash') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'flash', '')
return 1`)
)

func (x *Sessions) sessionKey(id []byte) string  { return x.prefix + "s:" + hex.EncodeToString(id) }
func (x *Sessions) ownerKey(owner string) string { return x.prefix + "o:" + owner }
func (x *Sessions) nonceKey(nonce []byte) string { return x.prefix + "n:" + hex.EncodeToString(nonce) }

// ttl returns how long from now until t, at least a millisecond.
func ttl(now, t time.Time) time.Duration {
	return max(t.Sub(now), time.Millisecond)
}

// sessionError wraps a failure of operation op.
func sessionError(op string, err error) error {
	return fmt.Errorf("keygate/redis: %s: %w", op, err)
}

// CreateSession stores a new session and ends the oldest of owner's
// beyond perOwner (see console.SessionStore).
func (x *Sessions) CreateSession(ctx context.Context, id []byte, owner string, data []byte, now, expires time.Time, perOwner int) error {
	if err := ctx.Err(); err != nil {
		return sessionError("create session", err)
	}
	skey, okey, member := x.sessionKey(id), x.ownerKey(owner), hex.EncodeToString(id)
	_, err := x.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.HSet(ctx, skey, "owner", owner, "data", data, "flash", "", "expires", expires.UnixMicro())
		p.PExpire(ctx, skey, ttl(now, expires))
		p.ZAdd(ctx, okey, goredis.Z{Score: float64(now.UnixMicro()), Member: member})
		return nil
	})
	if err != nil {
		return sessionError("create session", err)
	}
	if err := x.bound(ctx, okey, now, max(perOwner, 1)); err != nil {
		return sessionError("create session: end the oldest", err)
	}
	return nil
}

// bound ends the oldest live sessions of the owner's set okey beyond n,
// forgets the ended ones, and makes the set expire with its last session.
// Run after adding to the set, by every creation, it converges: each
// sees at least the sessions added before its own, and ends only sessions
// older than the newest n it sees.
func (x *Sessions) bound(ctx context.Context, okey string, now time.Time, n int) error {
	members, err := x.client.ZRange(ctx, okey, 0, -1).Result() // oldest first
	if err != nil {
		return err
	}
	exps := make([]*goredis.StringCmd, len(members))
	if _, err := x.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, m := range members {
			exps[i] = p.HGet(ctx, x.prefix+"s:"+m, "expires")
		}
		return nil
	}); err != nil && !errors.Is(err, goredis.Nil) {
		return err
	}
	var live, gone []string
	last := now
	for i, m := range members {
		us, err := exps[i].Int64()
		switch {
		case errors.Is(err, goredis.Nil):
			gone = append(gone, m)
		case err != nil:
			return err
		case us <= now.UnixMicro():
			gone = append(gone, m)
		default:
			live = append(live, m)
			if t := time.UnixMicro(us); t.After(last) {
				last = t
			}
		}
	}
	ended := live[:max(len(live)-n, 0)]
	if len(ended) == 0 && len(gone) == 0 {
		return x.client.PExpire(ctx, okey, ttl(now, last)).Err()
	}
	_, err = x.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, m := range ended {
			p.Del(ctx, x.prefix+"s:"+m)
		}
		for _, m := range append(ended, gone...) {
			p.ZRem(ctx, okey, m)
		}
		p.PExpire(ctx, okey, ttl(now, last))
		return nil
	})
	return err
}

// Session returns the data, flash message and expiry of session id if it
// is live at now; nil data if not (see console.SessionStore).
func (x *Sessions) Session(ctx context.Context, id []byte, now time.Time) ([]byte, string, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", time.Time{}, sessionError("read session", err)
	}
	vals, err := x.client.HMGet(ctx, x.sessionKey(id), "data", "flash", "expires").Result()
	if err != nil {
		return nil, "", time.Time{}, sessionError("read session", err)
	}
	data, ok := vals[0].(string)
	if !ok {
		return nil, "", time.Time{}, nil
	}
	flash, _ := vals[1].(string)
	es, _ := vals[2].(string)
	us, err := strconv.ParseInt(es, 10, 64)
	if err != nil {
		return nil, "", time.Time{}, sessionError("read session", fmt.Errorf("expiry %q: %w", es, err))
	}
	expires := time.UnixMicro(us).UTC()
	if !now.Before(expires) {
		return nil, "", time.Time{}, nil
	}
	return []byte(data), flash, expires, nil
}

// TouchSession sets the expiry of session id if it is live at now, and
// makes owner's set live at least as long.
func (x *Sessions) TouchSession(ctx context.Context, id []byte, owner string, now, expires time.Time) error {
	if err := ctx.Err(); err != nil {
		return sessionError("touch session", err)
	}
	d := ttl(now, expires)
	n, err := touchScript.Run(ctx, x.client, []string{x.sessionKey(id)}, now.UnixMicro(), expires.UnixMicro(), d.Milliseconds()).Int()
	if err != nil {
		return sessionError("touch session", err)
	}
	if n == 1 {
		if err := x.client.ExpireGT(ctx, x.ownerKey(owner), d+time.Second).Err(); err != nil {
			return sessionError("touch session", err)
		}
	}
	return nil
}

// DeleteSession ends session id. Its owner's set forgets it at the
// owner's next sign-in.
func (x *Sessions) DeleteSession(ctx context.Context, id []byte) error {
	if err := ctx.Err(); err != nil {
		return sessionError("delete session", err)
	}
	if err := x.client.Del(ctx, x.sessionKey(id)).Err(); err != nil {
		return sessionError("delete session", err)
	}
	return nil
}

// SetFlash sets the flash message of session id, if it exists.
func (x *Sessions) SetFlash(ctx context.Context, id []byte, msg string) error {
	if err := ctx.Err(); err != nil {
		return sessionError("set flash", err)
	}
	if err := setFlashScript.Run(ctx, x.client, []string{x.sessionKey(id)}, msg).Err(); err != nil {
		return sessionError("set flash", err)
	}
	return nil
}

// TakeFlash clears the flash message of session id if it is msg, and
// reports whether it did.
func (x *Sessions) TakeFlash(ctx context.Context, id []byte, msg string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, sessionError("take flash", err)
	}
	if msg == "" {
		return false, nil
	}
	n, err := takeFlashScript.Run(ctx, x.client, []string{x.sessionKey(id)}, msg).Int()
	if err != nil {
		return false, sessionError("take flash", err)
	}
	return n == 1, nil
}

// UseNonce records nonce as used until expires with SET NX, and reports
// whether it was unused.
func (x *Sessions) UseNonce(ctx context.Context, nonce []byte, now, expires time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, sessionError("use nonce", err)
	}
	ok, err := x.client.SetNX(ctx, x.nonceKey(nonce), 1, ttl(now, expires)).Result()
	if err != nil {
		return false, sessionError("use nonce", err)
	}
	return ok, nil
}
