/*
 * codes.h
 *		What makes an input code invalid, shared by psk_add_codes (codes.c)
 *		and the CSV import (bulk.c), so that both refuse the same codes.
 */
#ifndef PSK_CODES_H
#define PSK_CODES_H

/*
 * SQL: the code (already normalised, the expression code) is invalid:
 * empty, over 128 characters, with whitespace or control characters inside
 * (spaces: a text of the Unicode spaces [[:space:]] may miss, below).
 */
#define PSK_CODE_INVALID(code, spaces)                            \
	"(" code " IS NULL OR length(" code ") NOT BETWEEN 1 AND 128" \
	" OR " code " ~ '[[:space:][:cntrl:]]'"                       \
	" OR " code " <> translate(" code ", " spaces ", '')"         \
	" OR " code " <> psk.normalize_code(" code "))"

/* Unicode spaces in UTF-8, for spaces above (empty in other encodings). */
extern const char psk_unicode_spaces[];

#endif /* PSK_CODES_H */
