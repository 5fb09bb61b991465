package cookie

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"hash"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/gorilla/securecookie"
)

// A key signs cookies in securecookie's format and opens them again.
//
// Opening is the hot path, run on every request that reads a session, so
// it does what securecookie's Decode does without its per-call costs: a new
// HMAC and three fresh buffers per cookie. It accepts exactly the values
// securecookie.Decode accepts, with MaxAge and MaxLength off; the fuzz test
// FuzzOpenMatchesSecurecookie holds it to that. Signing without encryption
// is done by hand likewise (see seal).
type key struct {
	sc    *securecookie.SecureCookie // encrypts and signs; in tests, the reference
	macs  sync.Pool                  // of hash.Hash: HMAC-SHA256 under the hash key
	block cipher.Block               // nil unless encrypting
}

func newKey(hashKey, blockKey []byte) *key {
	k := &key{
		sc: securecookie.New(hashKey, blockKey).
			SetSerializer(securecookie.NopEncoder{}).
			MaxAge(0).
			MaxLength(0),
	}
	k.macs.New = func() any { return hmac.New(sha256.New, hashKey) }
	if blockKey != nil {
		block, err := aes.NewCipher(blockKey)
		if err != nil {
			panic("cookie: " + err.Error()) // blockKey is always 32 bytes
		}
		k.block = block
	}
	return k
}

// outerBuffers recycles the buffers that a cookie's outer base64 layer
// decodes into or encodes from; nothing returned to the caller points into
// them.
var outerBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// putOuterBuffer returns b to outerBuffers unless an oversized session,
// one that will fail with sessions.ErrCookieTooLarge anyway, grew it past any cookie's
// size.
func putOuterBuffer(b *[]byte) {
	if cap(*b) <= 8<<10 {
		outerBuffers.Put(b)
	}
}

// open verifies token, signed under name, and returns the data signed into
// it.
func (k *key) open(name, token string) ([]byte, bool) {
	// 1. The outer base64 layer: "date|value|mac".
	tb := unsafe.Slice(unsafe.StringData(token), len(token))
	bufp := outerBuffers.Get().(*[]byte)
	defer putOuterBuffer(bufp)
	if n := base64.URLEncoding.DecodedLen(len(tb)); cap(*bufp) < n {
		*bufp = make([]byte, n)
	}
	buf := (*bufp)[:cap(*bufp)]
	n, err := base64.URLEncoding.Decode(buf, tb)
	if err != nil {
		return nil, false
	}
	b := buf[:n]

	// 2. The MAC covers "name|date|value"; what follows the second '|' is
	// the MAC itself.
	i := indexByte(b, '|')
	if i < 0 {
		return nil, false
	}
	j := indexByte(b[i+1:], '|')
	if j < 0 {
		return nil, false
	}
	j += i + 1
	date, value, mac := b[:i], b[i+1:j], b[j+1:]
	h := k.macs.Get().(hash.Hash)
	h.Reset()
	h.Write(unsafe.Slice(unsafe.StringData(name), len(name)))
	h.Write([]byte{'|'})
	h.Write(b[:j])
	var sum [sha256.Size]byte
	ok := len(mac) == sha256.Size && subtle.ConstantTimeCompare(mac, h.Sum(sum[:0])) == 1
	k.macs.Put(h)
	if !ok {
		return nil, false
	}

	// 3. The date must be a number, though no age limit applies: the
	// manager checks expiry against the record's own times.
	if _, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(date), len(date)), 10, 64); err != nil {
		return nil, false
	}

	// 4. The inner base64 layer, then decryption.
	data := make([]byte, base64.URLEncoding.DecodedLen(len(value)))
	n, err = base64.URLEncoding.Decode(data, value)
	if err != nil {
		return nil, false
	}
	data = data[:n]
	if k.block != nil {
		size := k.block.BlockSize()
		if len(data) <= size {
			return nil, false
		}
		iv, ciphertext := data[:size], data[size:]
		cipher.NewCTR(k.block, iv).XORKeyStream(ciphertext, ciphertext)
		data = ciphertext
	}
	return data, true
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// seal signs (and, with a block key, encrypts) data as a cookie value.
//
// Encrypted cookies go through securecookie, which draws the IV. Signed
// ones, the default and the path every changed session takes, are laid out
// here as securecookie.Encode lays them out, without its fmt.Sprintf, fresh
// HMAC and four intermediate buffers; FuzzSealMatchesSecurecookie holds the
// two to the same output.
func (k *key) seal(name string, data []byte) (string, error) {
	if k.block != nil {
		return k.sc.Encode(name, data)
	}
	return k.sealAt(name, data, time.Now().Unix()), nil
}

// sealAt is seal for signed cookies, dated at the Unix time date.
func (k *key) sealAt(name string, data []byte, date int64) string {
	bufp := outerBuffers.Get().(*[]byte)
	defer putOuterBuffer(bufp)
	// The MAC covers "name|date|value"; the token leaves out the name.
	b := append((*bufp)[:0], name...)
	b = append(b, '|')
	b = strconv.AppendInt(b, date, 10)
	b = append(b, '|')
	b = base64.URLEncoding.AppendEncode(b, data)
	h := k.macs.Get().(hash.Hash)
	h.Reset()
	h.Write(b)
	b = append(b, '|')
	b = h.Sum(b)
	k.macs.Put(h)
	*bufp = b

	b = b[len(name)+1:]
	token := make([]byte, base64.URLEncoding.EncodedLen(len(b)))
	base64.URLEncoding.Encode(token, b)
	return unsafe.String(unsafe.SliceData(token), len(token))
}
