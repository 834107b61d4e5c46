--@ precise
SELECT * FROM users WHERE id = 42

SELECT id, email FROM users WHERE email = $1

select id , name from products where category_id = 7 and price < 100

SELECT name FROM products WHERE price BETWEEN 10 AND 20 ORDER BY price DESC

SELECT name FROM products WHERE price NOT BETWEEN 10.5 AND 99.99

SELECT * FROM products WHERE sku IN ('A-1', 'A-2', 'A-3')

SELECT * FROM products WHERE sku NOT IN ('X', 'Y')

SELECT * FROM users WHERE name LIKE 'Jo%'

SELECT * FROM users WHERE name NOT LIKE '%test%'

SELECT * FROM users WHERE email ILIKE '%@example.com'

SELECT * FROM users WHERE email NOT ILIKE $1

SELECT * FROM users WHERE deleted_at IS NULL

SELECT * FROM users WHERE deleted_at IS NOT NULL AND active = true

SELECT * FROM orders WHERE status = 'shipped' OR status = 'delivered'

SELECT * FROM orders WHERE NOT (status = 'cancelled')

SELECT * FROM orders WHERE (status = 'new' AND total > 100) OR (status = 'vip')

SELECT * FROM orders WHERE total > -5

SELECT * FROM ledger WHERE amount = -12.50

SELECT * FROM ledger WHERE amount < - 3

SELECT * FROM ledger WHERE balance >= -1e3

SELECT count(*) FROM orders WHERE user_id = $1

SELECT user_id, sum(total) FROM orders GROUP BY user_id

SELECT user_id, sum(total) AS s FROM orders WHERE created_at >= $1 GROUP BY user_id HAVING sum(total) > 1000

SELECT status, count(*) FROM orders GROUP BY status ORDER BY 2 DESC

SELECT avg(price), min(price), max(price) FROM products WHERE category_id = 3

SELECT count(DISTINCT user_id) FROM sessions WHERE day = '2024-05-01'

SELECT category_id, array_agg(name ORDER BY name) FROM products GROUP BY category_id

SELECT string_agg(tag, ',') FROM tags WHERE post_id = 10

SELECT json_agg(p) FROM products p WHERE p.category_id = 2

SELECT count(*) FILTER (WHERE status = 'open') AS open, count(*) FILTER (WHERE status = 'closed') FROM tickets

SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY price) FROM products

SELECT mode() WITHIN GROUP (ORDER BY color) FROM cars WHERE make = 'VW'

SELECT a, b, sum(c) FROM facts GROUP BY ROLLUP (a, b)

SELECT a, b, sum(c) FROM facts GROUP BY CUBE (a, b)

SELECT a, b, sum(c) FROM facts GROUP BY GROUPING SETS ((a), (b), ())

SELECT a, grouping(a), count(*) FROM facts GROUP BY ROLLUP (a)

SELECT bool_and(active), bool_or(admin) FROM users

SELECT * FROM products ORDER BY created_at DESC LIMIT 20

SELECT * FROM products ORDER BY id LIMIT 20 OFFSET 40

SELECT * FROM products ORDER BY id LIMIT $1 OFFSET $2

SELECT * FROM products ORDER BY id FETCH FIRST 5 ROWS ONLY

SELECT * FROM products ORDER BY price NULLS LAST, id

SELECT DISTINCT category_id FROM products

SELECT DISTINCT ON (user_id) user_id, created_at, total FROM orders ORDER BY user_id, created_at DESC

SELECT u.id, u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id = 5

SELECT u.id, o.id FROM users u INNER JOIN orders o ON u.id = o.user_id AND o.status = 'paid'

SELECT u.name, o.total FROM users u LEFT JOIN orders o ON o.user_id = u.id

SELECT u.name, o.total FROM users u LEFT OUTER JOIN orders o ON o.user_id = u.id WHERE u.country = 'DE'

SELECT u.name, o.total FROM orders o RIGHT JOIN users u ON o.user_id = u.id

SELECT a.x, b.y FROM a FULL OUTER JOIN b ON a.id = b.id

SELECT * FROM colors CROSS JOIN sizes

SELECT * FROM colors, sizes WHERE colors.id = 1

SELECT * FROM orders JOIN users USING (user_id)

SELECT * FROM orders NATURAL JOIN customers

SELECT e.name, m.name AS manager FROM employees e LEFT JOIN employees m ON e.manager_id = m.id

SELECT p.name, c.name FROM products p JOIN categories c ON c.id = p.category_id JOIN brands b ON b.id = p.brand_id WHERE b.slug = $1

SELECT * FROM a JOIN b ON a.id = b.a_id JOIN c ON c.b_id = b.id JOIN d ON d.c_id = c.id WHERE d.flag = true

SELECT * FROM a JOIN (b JOIN c ON c.b_id = b.id) ON b.a_id = a.id

SELECT * FROM a LEFT JOIN (b JOIN c ON c.b_id = b.id) ON b.a_id = a.id WHERE a.k = 1

SELECT * FROM public.users WHERE id = 1

SELECT * FROM sales.orders o WHERE o.region = 'EU'

SELECT * FROM analytics.events e JOIN public.users u ON u.id = e.user_id WHERE e.kind = 'click'

SELECT "User Name", "Email" FROM "Users" WHERE "Id" = 5

SELECT "order"."select" FROM "order" WHERE "order"."from" = 'x'

SELECT t."CamelCase" FROM "MixedCase"."Table" t

SELECT id::text, price::numeric(10,2) FROM products WHERE id = '12'::int

SELECT CAST(price AS integer) FROM products WHERE id = CAST('7' AS bigint)

SELECT * FROM events WHERE day = DATE '2024-01-31'

SELECT * FROM events WHERE at > TIMESTAMP '2024-01-31 10:00:00'

SELECT * FROM events WHERE duration > INTERVAL '2 hours'

SELECT * FROM events WHERE duration < '1 day'::interval

SELECT COALESCE(nickname, name, 'anonymous') FROM users WHERE id = 3

SELECT NULLIF(discount, 0) FROM products

SELECT GREATEST(a, b, c), LEAST(a, b) FROM triples

SELECT CASE WHEN price > 100 THEN 'expensive' WHEN price > 10 THEN 'normal' ELSE 'cheap' END FROM products

SELECT CASE status WHEN 'a' THEN 1 WHEN 'b' THEN 2 END AS rank FROM tasks WHERE owner = $1

SELECT * FROM products WHERE CASE WHEN $1 THEN price > 10 ELSE true END

SELECT tags[1], tags[2:3] FROM posts WHERE id = 9

SELECT * FROM posts WHERE tags @> ARRAY['sql']

SELECT * FROM posts WHERE 'sql' = ANY(tags)

SELECT * FROM posts WHERE id = ANY($1::int[])

SELECT * FROM posts WHERE id = ANY(ARRAY[1, 2, 3])

SELECT * FROM posts WHERE id <> ALL(ARRAY[4, 5])

SELECT array_length(tags, 1), cardinality(tags) FROM posts

SELECT ARRAY[1, 2, 3] || 4

SELECT unnest(tags) FROM posts WHERE id = 1

SELECT data->>'name', data->'address'->>'city' FROM docs WHERE id = 4

SELECT * FROM docs WHERE data->>'type' = 'invoice'

SELECT * FROM docs WHERE data @> '{"status": "open"}'::jsonb

SELECT * FROM docs WHERE data ? 'deleted'

SELECT * FROM docs WHERE data ?| array['a', 'b']

SELECT data #>> '{a,b,c}' FROM docs

SELECT jsonb_build_object('id', id, 'name', name) FROM users WHERE id = 2

SELECT jsonb_path_exists(data, '$.items[*] ? (@.qty > 1)') FROM docs

SELECT jsonb_array_elements(data->'items') FROM docs WHERE id = 1

SELECT to_jsonb(u) FROM users u WHERE u.id = 1

SELECT row_to_json(t) FROM things t

SELECT * FROM articles WHERE tsv @@ to_tsquery('english', 'cats & dogs')

SELECT ts_rank(tsv, plainto_tsquery($1)) AS r, title FROM articles WHERE tsv @@ plainto_tsquery($1) ORDER BY r DESC LIMIT 10

SELECT * FROM users WHERE lower(email) = lower($1)

SELECT upper(name), length(name), substr(name, 1, 3) FROM users

SELECT trim(both ' ' from name), position('a' in name), substring(name from 2 for 3) FROM users

SELECT overlay(name placing 'xx' from 2 for 2) FROM users

SELECT concat(first, ' ', last), concat_ws('-', a, b) FROM people

SELECT split_part(path, '/', 2) FROM requests_archive

SELECT regexp_replace(phone, '[^0-9]', '', 'g') FROM contacts

SELECT * FROM contacts WHERE phone ~ '^\+49'

SELECT * FROM contacts WHERE name ~* 'müller'

SELECT * FROM contacts WHERE name SIMILAR TO '(Jo|Ja)%'

SELECT * FROM contacts WHERE name LIKE 'a!%%' ESCAPE '!'

SELECT format('%s-%s', a, b) FROM pairs

SELECT md5(email) FROM users

SELECT round(price * 1.19, 2), floor(x), ceil(y), abs(z) FROM nums

SELECT price * quantity AS total, price / 2, price % 3, 2 ^ 10 FROM lines

SELECT extract(year FROM created_at), date_trunc('month', created_at) FROM orders

SELECT to_char(created_at, 'YYYY-MM-DD') FROM orders WHERE id = 1

SELECT created_at AT TIME ZONE 'UTC' FROM orders

SELECT * FROM bookings WHERE (start_at, end_at) OVERLAPS ('2024-01-01'::date, '2024-01-07'::date)

SELECT * FROM t WHERE a IS DISTINCT FROM b

SELECT * FROM t WHERE a IS NOT DISTINCT FROM 5

SELECT * FROM flags WHERE enabled IS TRUE

SELECT * FROM flags WHERE enabled IS NOT FALSE

SELECT * FROM flags WHERE enabled

SELECT * FROM flags WHERE NOT enabled

SELECT * FROM t WHERE (a, b) = (1, 2)

SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4))

SELECT * FROM t WHERE (a, b) > (1, 2)

SELECT * FROM items WHERE price BETWEEN SYMMETRIC 100 AND 10

SELECT * FROM items WHERE price NOT BETWEEN SYMMETRIC 100 AND 10

SELECT * FROM items WHERE name = E'it\'s'

SELECT * FROM items WHERE name = E'tab\there\nnewline'

SELECT * FROM items WHERE name = E'\x41\101\u00e9'

SELECT * FROM items WHERE name = $$it's a 'dollar' string$$

SELECT * FROM items WHERE name = $tag$ with $$ inside $tag$

SELECT * FROM items WHERE name = U&'d\0061t\+000061'

SELECT * FROM items WHERE name = 'multi'
'line continuation'

SELECT * FROM items WHERE code = B'1010' OR mask = X'1F'

SELECT * FROM items WHERE name = 'O''Reilly'

SELECT * FROM items WHERE name = '' AND note = ' '

SELECT * FROM items WHERE id = 00042

SELECT * FROM items WHERE qty = +5

SELECT * FROM items WHERE big = 123456789012345678901234567890

SELECT * FROM items WHERE ratio = .5 AND other = 5. AND sci = 6.02e23

/* leading comment */ SELECT * FROM items WHERE id = 1

SELECT * FROM items -- trailing line comment
WHERE id = 2

SELECT * FROM items WHERE id = 3 /* nested /* comment */ here */

SELECT * FROM items WHERE id = 4 /*action='show',traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/

SELECT * FROM items WHERE id = 5;

SELECT 1

SELECT 1 + 1 AS two, 'text', NULL, true, false

SELECT now

SELECT current_user, session_user, current_schema

SELECT version()

SELECT current_setting('search_path')

VALUES (1, 'a'), (2, 'b')

SELECT * FROM generate_series(1, 10) AS g(n)

SELECT * FROM unnest(ARRAY[1, 2, 3]) WITH ORDINALITY AS u(v, i)

SELECT * FROM ROWS FROM (generate_series(1, 3), generate_series(1, 4)) AS r(a, b)

SELECT p.id, g FROM products p, LATERAL generate_series(1, p.stock) AS g WHERE p.id = 5

SELECT * FROM jsonb_to_recordset('[{"a":1}]'::jsonb) AS x(a int)

TABLE products

SELECT * FROM ONLY parent_table WHERE id = 1

SELECT * FROM products AS p(pid, pname) WHERE pid = 3

SELECT t.* FROM things t WHERE t.kind = 'x'

SELECT t.*, u.name FROM things t JOIN users u ON u.id = t.owner_id

SELECT * FROM inventory WHERE warehouse = $1 AND sku = $2 AND qty > $3

SELECT * FROM users WHERE id = $1 OR $1 IS NULL

SELECT * FROM users WHERE ($1::text IS NULL OR name = $1)

SELECT name COLLATE "C" FROM users ORDER BY name COLLATE "C"

SELECT * FROM users WHERE name = 'x' COLLATE "de_DE"

SELECT id FROM users WHERE name > 'M' ORDER BY name USING >

SELECT 'a' || name || 'b' FROM users

SELECT -price, +price, @ price FROM products

SELECT price::money FROM products

SELECT '{1,2}'::int[], '(1,2)'::point, '10.0.0.1'::inet

SELECT * FROM networks WHERE addr << '10.0.0.0/8'::inet

SELECT * FROM shapes WHERE box @> point '(1,1)'

SELECT * FROM ranges WHERE during && tstzrange('2024-01-01', '2024-02-01')

SELECT lower(during), upper(during), isempty(during) FROM ranges

SELECT * FROM geo WHERE ST_DWithin(geom, ST_MakePoint(1, 2), 100)

SELECT similarity(name, 'jon') FROM users WHERE name % 'jon'

SELECT xmlelement(name foo, xmlattributes(id AS bar)) FROM t

SELECT * FROM orders o WHERE o.user_id = 1 AND o.status IN ('a', 'b') AND o.total BETWEEN 1 AND 10 AND o.note LIKE 'x%' AND o.shipped IS NULL

SELECT * FROM orders WHERE user_id = 1 AND (status = 'a' OR status = 'b' OR (status = 'c' AND total > 5))

SELECT * FROM orders WHERE NOT (status IN ('a', 'b') OR total < 0)

SELECT * FROM orders WHERE id IN (1)

SELECT * FROM orders WHERE id IN (1, 2, NULL)

SELECT * FROM orders WHERE id = NULL

SELECT * FROM orders WHERE 5 = id

SELECT * FROM orders WHERE 5 < total

SELECT * FROM orders WHERE total > user_id

SELECT * FROM orders WHERE 1 = 1

SELECT * FROM orders WHERE false

SELECT a.id FROM a, b WHERE a.id = b.id AND a.x = 1 AND b.y = 2 AND a.z = b.z

SELECT a.id FROM a, b WHERE a.x + b.y = 3

SELECT a.id FROM a, b WHERE a.x = 1 OR b.y = 2

SELECT x FROM a, b

SELECT a.id FROM a JOIN b ON a.id = b.id AND b.kind = 'k' LEFT JOIN c ON c.id = b.cid AND c.flag WHERE a.tenant = $1

SELECT * FROM category a, category_details b WHERE a.catid = b.catid AND b.locale = 'en_US' ORDER BY b.name

SELECT a.productid, b.name FROM product a JOIN product_details b ON a.productid = b.productid WHERE b.locale = $1 AND a.catid = $2

SELECT * FROM item i JOIN item_details d ON d.itemid = i.itemid WHERE i.productid = 'FI-SW-01' AND d.locale = 'en_US' ORDER BY i.itemid

SELECT qty FROM inventory WHERE itemid = $1

SELECT c.userid, c.itemid, c.quantity, d.listprice FROM cart c JOIN item_details d ON d.itemid = c.itemid WHERE c.userid = $1 AND d.locale = 'en_US'

SELECT count(*), sum(quantity) FROM cart WHERE userid = $1

EXPLAIN SELECT * FROM users WHERE id = 1

EXPLAIN (FORMAT JSON) SELECT * FROM users WHERE id = 1

PREPARE get_user (int) AS SELECT * FROM users WHERE id = $1

DECLARE c1 CURSOR FOR SELECT * FROM users WHERE active

SELECT 1; SELECT * FROM users WHERE id = 2

BEGIN; SELECT * FROM users WHERE id = 3; COMMIT

SELECT * FROM t1 WHERE c1 = 'a' AND c2 = 'b' AND c3 = 'c' AND c4 = 'd' AND c5 = 'e' AND c6 = 'f' AND c7 = 'g' AND c8 = 'h'

SELECT * FROM wide WHERE k IN (1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30)

SELECT * FROM weird_names WHERE "select" = 1 AND "from" = 2 AND "where" = 3

SELECT "ÜberTabelle".spalte FROM "ÜberTabelle" WHERE spalte = 'ä'

select * from USERS where ID = 1

SELECT*FROM users WHERE id=1

SELECT users.id FROM users WHERE users.id = 7

SELECT public.users.id FROM public.users WHERE public.users.id = 7

SELECT id FROM users u WHERE u.id = 7 ORDER BY u.name ASC NULLS FIRST

SELECT * FROM logs_2024 WHERE level IN ('error', 'fatal') ORDER BY at DESC LIMIT 100

SELECT * FROM products WHERE price > 10 AND price < 20 AND price <> 15

SELECT * FROM products WHERE price >= 10 AND price <= 20

SELECT * FROM products WHERE price != 15

SELECT date_part('dow', d), make_date(2024, 1, 1) FROM cal

SELECT justify_interval(i), make_interval(days => 3) FROM spans

SELECT generate_series(1, 3)

SELECT encode(digest, 'hex') FROM blobs WHERE id = 1

SELECT pg_typeof(x), num_nulls(a, b) FROM t

SELECT width_bucket(price, 0, 100, 10), count(*) FROM products GROUP BY 1

SELECT id FROM t WHERE x = 1 GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 1 OFFSET 1

SELECT * FROM ledger WHERE amount = -0.0 OR amount = -0

SELECT * FROM users WHERE name IN ($1, $2, $3)

SELECT * FROM users WHERE id BETWEEN $1 AND $2

SELECT * FROM users WHERE name LIKE $1 || '%'

SELECT * FROM users WHERE name LIKE 'a' || $1

--@ coarse
SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 100)

SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)

SELECT * FROM users u WHERE NOT EXISTS (SELECT 1 FROM bans b WHERE b.user_id = u.id)

SELECT name, (SELECT count(*) FROM orders o WHERE o.user_id = u.id) AS n FROM users u

SELECT * FROM products WHERE price > (SELECT avg(price) FROM products)

SELECT * FROM products WHERE price > ALL (SELECT price FROM competitors)

SELECT * FROM products WHERE category_id = ANY (SELECT id FROM categories WHERE visible)

SELECT * FROM (SELECT id, name FROM users WHERE active) AS au WHERE au.id < 100

SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(id, name) JOIN users u ON u.id = v.id

SELECT u.name, x.total FROM users u, LATERAL (SELECT sum(total) AS total FROM orders o WHERE o.user_id = u.id) x

SELECT u.name, x.* FROM users u LEFT JOIN LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id ORDER BY created_at DESC LIMIT 3) x ON true

SELECT ARRAY(SELECT tag FROM tags WHERE post_id = p.id) FROM posts p

WITH recent AS (SELECT * FROM orders WHERE created_at > '2024-01-01') SELECT * FROM recent WHERE total > 10

WITH a AS (SELECT 1 AS x), b AS (SELECT x + 1 AS y FROM a) SELECT * FROM b

WITH RECURSIVE tree AS (SELECT id, parent_id FROM nodes WHERE id = 1 UNION ALL SELECT n.id, n.parent_id FROM nodes n JOIN tree t ON n.parent_id = t.id) SELECT * FROM tree

WITH RECURSIVE t(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM t WHERE n < 100) SELECT sum(n) FROM t

WITH x AS MATERIALIZED (SELECT * FROM big) SELECT count(*) FROM x

WITH x AS NOT MATERIALIZED (SELECT * FROM big WHERE k = 1) SELECT * FROM x

WITH users AS (SELECT 1 AS id) SELECT * FROM users

WITH RECURSIVE search_graph(id, link, depth) AS (SELECT g.id, g.link, 1 FROM graph g UNION ALL SELECT g.id, g.link, sg.depth + 1 FROM graph g, search_graph sg WHERE g.id = sg.link) SEARCH DEPTH FIRST BY id SET ordercol SELECT * FROM search_graph ORDER BY ordercol

SELECT id FROM a UNION SELECT id FROM b

SELECT id FROM a UNION ALL SELECT id FROM b ORDER BY id LIMIT 10

SELECT id FROM a INTERSECT SELECT id FROM b

SELECT id FROM a EXCEPT SELECT id FROM b

SELECT id FROM a EXCEPT ALL SELECT id FROM b WHERE b.x = 1

(SELECT id FROM a WHERE x = 1) UNION (SELECT id FROM b WHERE y = 2) UNION (SELECT id FROM c)

SELECT 1 UNION SELECT 2

SELECT name, row_number() OVER (ORDER BY created_at) FROM users

SELECT name, rank() OVER (PARTITION BY dept ORDER BY salary DESC) FROM employees

SELECT name, dense_rank() OVER w FROM employees WINDOW w AS (PARTITION BY dept ORDER BY salary)

SELECT day, sum(amount) OVER (ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) FROM sales

SELECT id, lag(value) OVER (ORDER BY id), lead(value, 2) OVER (ORDER BY id) FROM series

SELECT id, first_value(x) OVER (PARTITION BY g ORDER BY t), last_value(x) OVER (PARTITION BY g) FROM m

SELECT id, ntile(4) OVER (ORDER BY score) FROM players WHERE team = 'red'

SELECT id, avg(x) OVER () FROM m

SELECT id, count(*) OVER (PARTITION BY g) FROM m WHERE id = 1

SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY created_at DESC) rn FROM orders) t WHERE rn = 1

SELECT * FROM orders WHERE user_id IN (SELECT id FROM users WHERE country = 'FR') AND status = 'open'

SELECT * FROM users WHERE id = (SELECT max(id) FROM users)

SELECT CASE WHEN EXISTS (SELECT 1 FROM flags WHERE name = 'x') THEN 1 ELSE 0 END

SELECT * FROM products p WHERE p.price < (SELECT min(price) FROM offers o WHERE o.product_id = p.id)

SELECT * FROM t WHERE (a, b) IN (SELECT a, b FROM u)

SELECT count(*) FROM (SELECT DISTINCT user_id FROM orders) s

SELECT * FROM a JOIN (SELECT * FROM b WHERE flag) bb ON bb.a_id = a.id

SELECT id FROM a WHERE x = 1 UNION SELECT id FROM a WHERE x = 2

WITH ids AS (SELECT unnest($1::int[]) AS id) SELECT * FROM products JOIN ids USING (id)

SELECT * FROM category a, category_details b WHERE a.catid = b.catid AND b.locale = 'en_US' AND a.catid IN (SELECT catid FROM product)

SELECT u.* FROM users u WHERE u.id IN (SELECT user_id FROM orders GROUP BY user_id HAVING count(*) > 5)

SELECT name, sum(total) OVER (PARTITION BY name) FROM (SELECT u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id) s

WITH top AS (SELECT user_id, sum(total) s FROM orders GROUP BY user_id ORDER BY s DESC LIMIT 10) SELECT u.name, top.s FROM top JOIN users u ON u.id = top.user_id

SELECT * FROM docs d WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(d.data->'items') it WHERE it->>'sku' = 'X')

SELECT x FROM (VALUES (1), (2)) v(x)

SELECT * FROM a WHERE a.id NOT IN (SELECT a_id FROM b WHERE a_id IS NOT NULL)

SELECT percent_rank() OVER (ORDER BY score), cume_dist() OVER (ORDER BY score) FROM players

--@ none
SELECT * FROM events WHERE at > now() - interval '1 hour'

SELECT * FROM events WHERE day = current_date

SELECT * FROM events WHERE at < CURRENT_TIMESTAMP

SELECT * FROM sessions WHERE expires_at > localtimestamp

SELECT * FROM products ORDER BY random() LIMIT 5

SELECT gen_random_uuid()

SELECT clock_timestamp(), statement_timestamp()

SELECT to_char(now(), 'YYYY')

SELECT age(birthdate) FROM people

SELECT * FROM products TABLESAMPLE SYSTEM (10)

SELECT relname FROM pg_class WHERE relkind = 'r'

SELECT * FROM pg_catalog.pg_tables

SELECT * FROM pg_stat_activity WHERE state = 'active'

SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'

SELECT c.relname, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace

EXECUTE get_user(1)

SELECT pg_sleep(0.1)

SELECT txid_current()

SELEC * FROM users

SELECT * FROM WHERE id = 1

SELECT * FROM users WHERE

SELECT 'unterminated

SELECT $$never closed

SELECT (1 + 2

))((

DROP

SELECT * FROM users WHERE id = 1 AND AND name = 'x'

INSERT users VALUES (1)

SELECT * FROM users u JOIN ON u.id = 1

this is not sql at all

SELECT 1 +

SELECT * FROM t WHERE x = 'a' 'b'

SELECT * FROM "unterminated identifier

SELECT 1 /* unterminated comment

SELECT * FROM t LIMIT ALL OFFSET

--@ write
INSERT INTO users (name, email) VALUES ('a', 'b')

INSERT INTO users (name, email) VALUES ($1, $2) RETURNING id

INSERT INTO users (name) SELECT name FROM staging WHERE ok

INSERT INTO counters (k, v) VALUES ('hits', 1) ON CONFLICT (k) DO UPDATE SET v = counters.v + 1

INSERT INTO tags (name) VALUES ('x') ON CONFLICT DO NOTHING

UPDATE users SET name = 'b' WHERE id = 1

UPDATE users SET last_login = now() WHERE id = $1 RETURNING last_login

UPDATE orders o SET status = 'vip' FROM users u WHERE u.id = o.user_id AND u.vip

DELETE FROM sessions WHERE expires_at < now()

DELETE FROM cart WHERE userid = $1 RETURNING itemid, quantity

DELETE FROM a USING b WHERE a.b_id = b.id AND b.dead

MERGE INTO stock s USING deliveries d ON s.item = d.item WHEN MATCHED THEN UPDATE SET qty = s.qty + d.qty WHEN NOT MATCHED THEN INSERT (item, qty) VALUES (d.item, d.qty)

WITH moved AS (DELETE FROM queue WHERE id = 1 RETURNING *) INSERT INTO done SELECT * FROM moved

WITH u AS (UPDATE accounts SET balance = balance - 10 WHERE id = 1 RETURNING *) SELECT * FROM u

SELECT * FROM jobs WHERE state = 'ready' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED

SELECT * FROM accounts WHERE id = 1 FOR UPDATE

SELECT * FROM accounts WHERE id = 1 FOR NO KEY UPDATE NOWAIT

SELECT * FROM accounts WHERE id = 1 FOR SHARE

SELECT * FROM accounts WHERE id = 1 FOR KEY SHARE

SELECT a.* FROM accounts a JOIN owners o ON o.id = a.owner_id FOR UPDATE OF a

SELECT nextval('orders_id_seq')

SELECT setval('orders_id_seq', 100)

SELECT pg_advisory_lock(42)

SELECT set_config('app.user', 'x', false)

SELECT my_custom_function(id) FROM users

SELECT billing.compute_invoice($1)

SELECT * FROM my_set_returning_function(3)

SELECT * INTO TEMP snapshot FROM users

CREATE TABLE t (id int primary key, name text)

CREATE TABLE copy AS SELECT * FROM users

ALTER TABLE users ADD COLUMN age int

DROP TABLE IF EXISTS old_stuff

TRUNCATE logs_2023

CREATE INDEX CONCURRENTLY idx ON users (email)

CREATE VIEW v AS SELECT * FROM users WHERE active

CREATE MATERIALIZED VIEW mv AS SELECT count(*) FROM orders

REFRESH MATERIALIZED VIEW mv

GRANT SELECT ON users TO reader

COMMENT ON TABLE users IS 'people'

CALL do_maintenance()

DO $$ BEGIN RAISE NOTICE 'hi'; END $$

COPY users FROM STDIN

LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE

NOTIFY jobs, 'new'

CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$

SELECT * FROM users WHERE id = 1; UPDATE users SET seen = true WHERE id = 1

--@ utility
BEGIN

START TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY

COMMIT

ROLLBACK

SAVEPOINT sp1

RELEASE SAVEPOINT sp1

ROLLBACK TO SAVEPOINT sp1

SET search_path TO app, public

SET LOCAL statement_timeout = '5s'

RESET ALL

SHOW server_version

DISCARD ALL

DEALLOCATE ALL

LISTEN jobs

UNLISTEN *

SET TRANSACTION ISOLATION LEVEL REPEATABLE READ

FETCH 10 FROM c1

CLOSE c1

VACUUM ANALYZE users
