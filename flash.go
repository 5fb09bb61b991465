package sessions

// Flashes is a list of one-time messages, such as "Your changes were
// saved", for a field of a session type: a handler adds a message before a
// redirect, and the next page pops it and shows it once.
//
//	type Session struct {
//		UserID int64
//		Flash  sessions.Flashes[string]
//	}
//
//	s.Data().Flash.Add("Your changes were saved.")
//	...
//	for _, msg := range s.Data().Flash.Pop() { ... }
//
// Popping an empty list leaves it as it was, so a page that shows no
// message saves nothing. M may be any type the session's codec encodes, a
// struct with a level and a text for example.
type Flashes[M any] []M

// Add appends a message.
func (f *Flashes[M]) Add(msg M) { *f = append(*f, msg) }

// Pop returns the messages, oldest first, and empties the list; it returns
// nil, and changes nothing, when there are none.
func (f *Flashes[M]) Pop() []M {
	if len(*f) == 0 {
		return nil
	}
	msgs := *f
	*f = nil
	return msgs
}

// Len returns the number of messages waiting.
func (f Flashes[M]) Len() int { return len(f) }
