-- Fixture of the HTTP tests: the demo data of API.md, and psk_shim, a role
-- with nothing but EXECUTE on the HTTP route functions (least privilege).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION psk CASCADE;

SELECT FROM psk_create_user(NULL, 'Admin', 'admin', 'admin@example.com', 'Rdl@12345', true);
SELECT FROM psk_create_user('admin@example.com', 'Trillium', 'osv', 'osv@example.com', 'Rdl@12345', pool => 'OSV');
SELECT FROM psk_create_user('admin@example.com', 'Zeus', 'hsv', 'hsv@example.com', 'Rdl@12345', pool => 'HSV');
SELECT FROM psk_add_region('admin@example.com', 'Europe');
SELECT FROM psk_add_country('admin@example.com', 'UK', 'Europe');
SELECT FROM psk_add_country('admin@example.com', 'DE', 'Europe');
SELECT FROM psk_add_region('admin@example.com', 'Asia');
SELECT FROM psk_add_country('admin@example.com', 'IN', 'Asia');
SELECT FROM psk_add_codes('admin@example.com', 'OSV',
                          ARRAY(SELECT format('OSV-%s', lpad(g::text, 3, '0')) FROM generate_series(1, 20) g),
                          ARRAY['UK', 'DE']);
SELECT FROM psk_add_codes('admin@example.com', 'HSV',
                          ARRAY(SELECT format('HSV-%s', lpad(g::text, 3, '0')) FROM generate_series(1, 20) g),
                          ARRAY['UK', 'DE']);
SELECT FROM psk_add_codes('admin@example.com', 'COMMON',
                          ARRAY(SELECT format('COM-%s', lpad(g::text, 3, '0')) FROM generate_series(1, 20) g));

\i scripts/shim-role.sql
