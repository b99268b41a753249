//  zm_json.h - JSON <-> MessagePack conversion for the zmesh programs.
//
//  The CLI programs take payloads as JSON text from users and print payloads
//  from the network as JSON, so this module converts one value each way. The
//  MessagePack side is untrusted: it is decoded by a bounds-checked reader of
//  our own, never by msgpack-c's unpacker (which allocates count * 16 bytes
//  for a claimed array before checking it has the bytes).
//
//  JSON -> MessagePack (jansson parser, duplicate object keys rejected):
//      object      map, str keys in the text's order
//      array       array
//      string      str (\u0000 allowed; a NUL in an object key is not)
//      integer     int, smallest encoding; beyond the int64 range is an error
//      real        float64
//      true/false  bool
//      null        nil
//  MessagePack -> JSON (compact: no spaces, map keys in the bytes' order):
//      nil, bool             null, true/false
//      int/uint (any width)  integer; a uint above INT64_MAX becomes a real
//      float32/float64       real, in jansson's %.17g form so the double
//                            survives exactly (0.1 prints as
//                            0.10000000000000001, 1.0 as 1.0, 1e20 as 1e20);
//                            NaN and infinity are errors: JSON has no form
//                            for them
//      str                   string (NUL as \u0000); invalid UTF-8 is an error
//      bin                   {"$bin":"<base64>"}
//      ext                   {"$ext":<type>,"$bin":"<base64>"}
//      array                 array
//      map                   object; a key that is not a str becomes a string
//                            holding its compact JSON text (key 1 -> "1", key
//                            [1,2] -> "[1,2]"); two keys that end up equal are
//                            an error, as is a key whose JSON text is over 12
//                            bytes per byte of its encoding plus 32 (only keys
//                            nested in keys get there, by repeated escaping)
//  Both directions reject more than 64 arrays and maps nested in one another,
//  the broker's own limit. The "$bin"/"$ext" objects are one-way: that JSON
//  goes back as a map with those str keys, not as bin or ext. Non-str keys,
//  uints above INT64_MAX and map keys holding NUL bytes do not come back
//  either (jansson refuses "\u0000" in object keys), nor does a bin or ext
//  nested 64 deep: its "$bin" object is one level deeper. Allocation failure
//  aborts, as everywhere in zmesh.
#ifndef ZM_JSON_H_INCLUDED
#define ZM_JSON_H_INCLUDED

#include "zmesh.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Enough room for any error reason from this module, NUL included.
#define ZM_JSON_ERROR_MAX 160

//  Converts one JSON text (exactly one value; surrounding whitespace allowed) to
//  MessagePack. On ZMESH_OK *data_p is a malloc'ed buffer of *size_p bytes the
//  caller frees. On ZMESH_EINVAL, error (may be NULL) gets a one-line reason
//  such as "bad JSON at line 1 column 5: ..." and *data_p is untouched.
//  On ZMESH_OK a non-NULL error is set to "".
int zm_json_to_msgpack(const char *text, size_t length, char **data_p, size_t *size_p, char *error,
                       size_t error_size);

//  Converts bytes holding exactly one MessagePack object to compact JSON
//  (no spaces, keys in the object's order), malloc'ed and NUL-terminated.
//  ZMESH_EINVAL with a reason if the bytes are not exactly one well-formed
//  object (truncated, trailing bytes, nesting over 64); *text_p is untouched.
//  The reason reads "bad MessagePack at byte <offset>: <what>", the offset
//  being where the offending item starts.
int zm_msgpack_to_json(const void *data, size_t size, char **text_p, char *error,
                       size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
