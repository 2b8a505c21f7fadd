/*
 * openapi.S
 *		The OpenAPI document (openapi.json beside this file), built into the
 *		binary so that GET /openapi.json needs no file at run time.
 */
	.section .rodata
	.global shim_openapi_json
	.global shim_openapi_json_end
shim_openapi_json:
	.incbin "openapi.json"
shim_openapi_json_end:
	.byte 0
	.section .note.GNU-stack,"",@progbits
