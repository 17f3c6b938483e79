-- Arithmetic of CQL2 filters on float8, for the PostGIS engine (src/engine/postgis/compile.rs).
-- The memory engine computes in IEEE doubles and takes a result that is not finite (an
-- overflow, a division by zero, a negative number to a fractional power) as no value; a
-- result too small for a double is 0. PostgreSQL raises an error for each of these instead
-- ("value out of range: overflow" or "underflow", "division by zero"). These functions give
-- the memory engine's answers: NULL where it has none, 0 for underflow. Each argument is
-- evaluated once (PL/pgSQL is never inlined), so nesting them does not repeat the SQL text.
-- The bounds: ln(DBL_MAX) = 709.78, ln(smallest subnormal) = -744.44.

CREATE OR REPLACE FUNCTION hamn.cql2_add(a float8, b float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    IF abs(a / 2 + b / 2) > 8.988465674311579e307 THEN
        RETURN NULL;
    END IF;
    RETURN a + b;
END $$;

CREATE OR REPLACE FUNCTION hamn.cql2_sub(a float8, b float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    IF abs(a / 2 - b / 2) > 8.988465674311579e307 THEN
        RETURN NULL;
    END IF;
    RETURN a - b;
END $$;

CREATE OR REPLACE FUNCTION hamn.cql2_mul(a float8, b float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    e float8;
BEGIN
    IF a = 0 OR b = 0 THEN
        RETURN a * b;
    END IF;
    e := ln(abs(a)) + ln(abs(b));
    IF e > 709.78 THEN
        RETURN NULL;
    ELSIF e < -744.44 THEN
        RETURN 0;
    END IF;
    RETURN a * b;
END $$;

CREATE OR REPLACE FUNCTION hamn.cql2_div(a float8, b float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    e float8;
BEGIN
    IF b = 0 THEN
        RETURN NULL;
    ELSIF a = 0 THEN
        RETURN a / b;
    END IF;
    e := ln(abs(a)) - ln(abs(b));
    IF e > 709.78 THEN
        RETURN NULL;
    ELSIF e < -744.44 THEN
        RETURN 0;
    END IF;
    RETURN a / b;
END $$;

-- C's fmod, exactly: the remainder has the dividend's sign and is computed without rounding
-- (each step subtracts a power-of-two multiple t of |b| with t <= x < 2t, which is exact).
CREATE OR REPLACE FUNCTION hamn.cql2_mod(a float8, b float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    x float8 := abs(a);
    y float8 := abs(b);
    t float8;
BEGIN
    IF y = 0 THEN
        RETURN NULL;
    END IF;
    WHILE x >= y LOOP
        t := y;
        WHILE t <= x / 2 LOOP
            t := t * 2;
        END LOOP;
        x := x - t;
    END LOOP;
    IF a < 0 THEN
        RETURN -x;
    END IF;
    RETURN x;
END $$;

CREATE OR REPLACE FUNCTION hamn.cql2_pow(a float8, b float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    l float8;
BEGIN
    IF a = 0 AND b < 0 THEN
        RETURN NULL;
    ELSIF a < 0 AND b <> trunc(b) THEN
        RETURN NULL;
    ELSIF a = 0 OR b = 0 OR abs(a) = 1 THEN
        RETURN power(a, b);
    END IF;
    -- |a|^b = exp(b * l); compared as b against a bound, since b * l itself can overflow.
    l := ln(abs(a));
    IF (l > 0 AND b > 709.78 / l) OR (l < 0 AND b < 709.78 / l) THEN
        RETURN NULL;
    ELSIF (l > 0 AND b < -744.44 / l) OR (l < 0 AND b > -744.44 / l) THEN
        RETURN 0;
    END IF;
    RETURN power(a, b);
END $$;
