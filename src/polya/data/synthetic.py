"""A built-in offline question source: seeded, procedurally generated grade-school word problems.

Every problem is built from a template (shopping with change, rates, ages, ...) at a difficulty
from 1 (one or two steps, small numbers) to 3 (four or more steps, larger numbers). Numbers are
drawn first and the answer is computed from them with integers and :class:`fractions.Fraction`
only, so every answer is exact by construction; the worked solution ends in GSM8K's
``#### <answer>`` line.

Record ``i`` of seed ``s`` depends only on ``(s, i)`` and the template/difficulty lists, so the
same seed always gives the same questions, and a longer run extends a shorter one.

>>> [r.id for r in generate_word_problems(2, seed=7)]
['synthetic-7-0', 'synthetic-7-1']
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Callable, Iterable, Sequence

from polya.core.errors import ConfigError
from polya.data.records import QuestionRecord

SOURCE_NAME = "synthetic"
DIFFICULTIES = (1, 2, 3)

Number = int | Fraction


# ----------------------------------------------------------------------------- formatting


def format_number(value: Number) -> str:
    """Write an exact number the way GSM8K answers are written.

    Integers plainly, terminating fractions as decimals without trailing zeros, any other
    fraction as ``p/q``.

    >>> format_number(Fraction(7, 2)), format_number(Fraction(12, 4)), format_number(Fraction(1, 3))
    ('3.5', '3', '1/3')
    """
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = abs(value) * 10**places
    assert scaled.denominator == 1
    digits = str(scaled.numerator).rjust(places + 1, "0")
    text = f"{digits[:-places]}.{digits[-places:]}".rstrip("0").rstrip(".")
    return f"-{text}" if value < 0 else text


def _money(value: Number) -> str:
    """``$12`` for whole dollars, ``$3.50`` otherwise."""
    value = Fraction(value)
    if value.denominator == 1:
        return f"${value.numerator}"
    cents = value * 100
    assert cents.denominator == 1, "money amounts are whole cents by construction"
    return f"${cents.numerator // 100}.{cents.numerator % 100:02d}"


# ----------------------------------------------------------------------------- vocabulary

# (name, subject pronoun); object/possessive pronouns follow from the subject.
_PEOPLE: tuple[tuple[str, str], ...] = tuple(
    [(n, "she") for n in (
        "Aisha", "Beatriz", "Chloe", "Daniela", "Emma", "Fatima", "Grace", "Hana", "Ingrid",
        "Jasmine", "Keiko", "Leila", "Maria", "Nadia", "Olivia", "Priya", "Quinn", "Rosa",
        "Sofia", "Tamara", "Uma", "Valentina", "Wen", "Ximena", "Yuki", "Zainab", "Amara",
        "Bianca", "Chiara", "Divya", "Elif", "Freya", "Gabriela", "Ayesha", "Lucia", "Mei",
    )]
    + [(n, "he") for n in (
        "Ahmed", "Ben", "Carlos", "Dmitri", "Elijah", "Felix", "Gustavo", "Hiro", "Ibrahim",
        "Jamal", "Kenji", "Liam", "Mateo", "Noah", "Omar", "Pedro", "Rafael", "Samuel",
        "Tariq", "Umar", "Victor", "Wei", "Xavier", "Yusuf", "Zane", "Arjun", "Bruno",
        "Chidi", "Diego", "Emeka", "Farid", "Goran", "Hassan", "Ivan", "Kofi", "Lars",
    )]
)
_OBJECT = {"she": "her", "he": "him"}

# (singular, plural) item names, grouped by where they make sense.
_SHOP_ITEMS = (
    ("notebook", "notebooks"), ("pencil case", "pencil cases"), ("mango", "mangoes"),
    ("loaf of bread", "loaves of bread"), ("bottle of juice", "bottles of juice"),
    ("comic book", "comic books"), ("candle", "candles"), ("pair of socks", "pairs of socks"),
    ("box of crayons", "boxes of crayons"), ("cupcake", "cupcakes"), ("flower pot", "flower pots"),
    ("tennis ball", "tennis balls"), ("sketchbook", "sketchbooks"), ("jar of honey", "jars of honey"),
    ("bag of rice", "bags of rice"), ("puzzle", "puzzles"), ("scarf", "scarves"), ("mug", "mugs"),
)
_COUNTABLES = (
    ("marble", "marbles"), ("sticker", "stickers"), ("apple", "apples"), ("cookie", "cookies"),
    ("seashell", "seashells"), ("trading card", "trading cards"), ("strawberry", "strawberries"),
    ("pencil", "pencils"), ("balloon", "balloons"), ("bead", "beads"), ("stamp", "stamps"),
    ("chocolate", "chocolates"), ("candy", "candies"), ("toy car", "toy cars"), ("egg", "eggs"),
    ("button", "buttons"), ("postcard", "postcards"), ("walnut", "walnuts"),
)
_STORES = (
    ("bookstore", ("book", "books")), ("bakery", ("muffin", "muffins")),
    ("toy shop", ("yo-yo", "yo-yos")), ("garden center", ("seed packet", "seed packets")),
    ("shoe store", ("pair of shoes", "pairs of shoes")), ("grocery store", ("melon", "melons")),
    ("hardware store", ("hammer", "hammers")), ("pet shop", ("bag of dog food", "bags of dog food")),
    ("stationery shop", ("pen", "pens")), ("sports shop", ("football", "footballs")),
)
_SALE_ITEMS = (
    "bicycle", "jacket", "lamp", "backpack", "pair of headphones", "bookshelf", "camera",
    "guitar", "tent", "rug", "coffee machine", "skateboard", "watch", "desk chair",
)
_MAKERS = (
    ("machine", "machines", ("bottle cap", "bottle caps")), ("printer", "printers", ("page", "pages")),
    ("baker", "bakers", ("pie", "pies")), ("worker", "workers", ("box", "boxes")),
    ("robot", "robots", ("toy", "toys")), ("loom", "looms", ("scarf", "scarves")),
)
_JOBS = (
    "paint a fence", "mow a lawn", "clean the classroom", "wash all the dishes",
    "fold the laundry", "pack the boxes", "weed the garden", "stack the chairs",
)
_VEHICLES = ("train", "bus", "truck", "ferry", "car", "motorbike", "van")


@dataclass
class _Story:
    """Draws names without repeats inside one problem."""

    rng: random.Random
    used: set[str] = field(default_factory=set)

    def person(self) -> tuple[str, str]:
        while True:
            name, pronoun = self.rng.choice(_PEOPLE)
            if name not in self.used:
                self.used.add(name)
                return name, pronoun


@dataclass(frozen=True)
class _Problem:
    question: str
    steps: list[str]
    answer: Number


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _listing(parts: Sequence[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return f"{parts[0]} and {parts[1]}"
    return ", ".join(parts[:-1]) + f", and {parts[-1]}"


# ----------------------------------------------------------------------------- templates


def _shopping_change(rng: random.Random, difficulty: int) -> _Problem:
    name, he = _Story(rng).person()
    kinds = rng.sample(_SHOP_ITEMS, difficulty)
    total: Fraction = Fraction(0)
    parts, steps, costs = [], [], []
    for _single, plural in kinds:
        qty = rng.randint(2, 3 + 2 * difficulty)
        if difficulty == 1:
            price = Fraction(rng.randint(1, 9))
        elif difficulty == 2:
            price = Fraction(rng.randint(2, 15))
        else:
            price = Fraction(rng.randrange(100, 1300, 25), 100)
        cost = qty * price
        costs.append(cost)
        total += cost
        parts.append(f"{qty} {plural} for {_money(price)} each")
        steps.append(f"The {plural} cost {qty} x {_money(price)} = {_money(cost)}.")
    bill = next(b for b in (10, 20, 50, 100, 200, 500, 1000) if b > total)
    if len(costs) > 1:
        steps.append(f"Altogether {he} spends {' + '.join(_money(c) for c in costs)} = {_money(total)}.")
    change = bill - total
    steps.append(f"The change is {_money(bill)} - {_money(total)} = {_money(change)}.")
    question = (
        f"{name} buys {_listing(parts)}. {_cap(he)} pays with a ${bill} bill. "
        f"How much change, in dollars, does {he} get back?"
    )
    return _Problem(question, steps, change)


def _distance_rate_time(rng: random.Random, difficulty: int) -> _Problem:
    name, he = _Story(rng).person()
    vehicle = rng.choice(_VEHICLES)
    if difficulty == 1:
        speed = rng.randrange(20, 95, 5)
        hours = rng.randint(2, 8)
        dist = speed * hours
        question = (
            f"A {vehicle} travels at a steady {speed} miles per hour. "
            f"How many miles does it travel in {hours} hours?"
        )
        steps = [f"In {hours} hours it travels {speed} x {hours} = {dist} miles."]
        return _Problem(question, steps, dist)
    if difficulty == 2:
        speed = rng.randrange(30, 125, 5)
        t1, t2 = rng.sample(range(2, 10), 2)
        d1, d2 = speed * t1, speed * t2
        question = (
            f"{name}'s {vehicle} covers {d1} kilometers in {t1} hours. At the same speed, "
            f"how many hours will it take to cover {d2} kilometers?"
        )
        steps = [
            f"The speed is {d1} / {t1} = {speed} kilometers per hour.",
            f"Covering {d2} kilometers takes {d2} / {speed} = {t2} hours.",
        ]
        return _Problem(question, steps, t2)
    # Two legs with half-hour times and a stop, answered in minutes.
    v1, v2 = rng.randrange(30, 75, 2), rng.randrange(40, 85, 2)
    h1, h2 = Fraction(rng.randint(2, 7), 2), Fraction(rng.randint(2, 7), 2)
    d1, d2 = v1 * h1, v2 * h2
    stop = rng.randrange(10, 50, 5)
    m1, m2 = h1 * 60, h2 * 60
    total = m1 + stop + m2
    question = (
        f"{name} drives {format_number(d1)} miles at {v1} miles per hour, stops for {stop} minutes, "
        f"then drives {format_number(d2)} miles at {v2} miles per hour. How many minutes does the "
        f"whole trip take?"
    )
    steps = [
        f"The first part takes {format_number(d1)} / {v1} = {format_number(h1)} hours, "
        f"which is {format_number(h1)} x 60 = {format_number(m1)} minutes.",
        f"The second part takes {format_number(d2)} / {v2} = {format_number(h2)} hours, "
        f"which is {format_number(h2)} x 60 = {format_number(m2)} minutes.",
        f"With the stop, the trip takes {format_number(m1)} + {stop} + {format_number(m2)} = "
        f"{format_number(total)} minutes.",
    ]
    return _Problem(question, steps, total)


def _sharing_division(rng: random.Random, difficulty: int) -> _Problem:
    name, he = _Story(rng).person()
    _single, items = rng.choice(_COUNTABLES)
    if difficulty == 1:
        friends, each = rng.randint(2, 9), rng.randint(2, 12)
        total = friends * each
        question = (
            f"{name} has {total} {items} and shares them equally among {friends} friends. "
            f"How many {items} does each friend get?"
        )
        steps = [f"Each friend gets {total} / {friends} = {each} {items}."]
        return _Problem(question, steps, each)
    if difficulty == 2:
        if rng.random() < 0.5:
            friends, each = rng.randint(3, 12), rng.randint(3, 15)
            rest = rng.randint(1, friends - 1)
            total = friends * each + rest
            question = (
                f"{name} shares {total} {items} equally among {friends} friends, giving each "
                f"friend as many as possible. How many {items} are left over?"
            )
            steps = [
                f"{total} / {friends} = {each} with a remainder of {rest}, since "
                f"{friends} x {each} = {friends * each}.",
                f"So {total} - {friends * each} = {rest} {items} are left over.",
            ]
            return _Problem(question, steps, rest)
        seats = rng.randint(6, 15)
        people = rng.randint(2 * seats + 1, 9 * seats)
        vans = -(-people // seats)
        question = (
            f"{people} students are going on a trip. Each van holds {seats} students. "
            f"How many vans are needed so that every student has a seat?"
        )
        full, rest = divmod(people, seats)
        steps = [f"{people} / {seats} = {full} with a remainder of {rest}."]
        if rest:
            steps.append(f"The {rest} remaining students need one more van, so {full} + 1 = {vans} vans.")
        else:
            steps.append(f"Exactly {vans} vans are filled.")
        return _Problem(question, steps, vans)
    packs, per_pack = rng.randint(3, 12), rng.randint(6, 24)
    bought = packs * per_pack
    keep = rng.randint(2, min(15, bought // 3))
    friends = rng.randint(3, 9)
    shared = bought - keep
    each, rest = divmod(shared, friends)
    ask_rest = rng.random() < 0.5
    question = (
        f"{name} buys {packs} packs of {items} with {per_pack} in each pack. {_cap(he)} keeps "
        f"{keep} for {_OBJECT[he]}self and shares the rest equally among {friends} friends, "
        f"giving each friend as many as possible. "
        + (f"How many {items} are left over?" if ask_rest else f"How many {items} does each friend get?")
    )
    steps = [
        f"{_cap(he)} buys {packs} x {per_pack} = {bought} {items}.",
        f"After keeping {keep}, {he} shares {bought} - {keep} = {shared}.",
        f"{shared} / {friends} = {each} with a remainder of {rest}.",
    ]
    steps.append(
        f"So {rest} {items} are left over." if ask_rest else f"So each friend gets {each} {items}."
    )
    return _Problem(question, steps, rest if ask_rest else each)


def _ages(rng: random.Random, difficulty: int) -> _Problem:
    story = _Story(rng)
    a, _ = story.person()
    b, _ = story.person()
    if difficulty == 1:
        gap, later = rng.randint(2, 30), rng.randint(2, 10)
        b_future = rng.randint(later + 3, later + 40)
        b_now = b_future - later
        a_now = b_now + gap
        question = (
            f"{a} is {gap} years older than {b}. In {later} years, {b} will be {b_future} years old. "
            f"How old is {a} now?"
        )
        steps = [
            f"{b} is {b_future} - {later} = {b_now} years old now.",
            f"{a} is {b_now} + {gap} = {a_now} years old.",
        ]
        return _Problem(question, steps, a_now)
    if difficulty == 2:
        if rng.random() < 0.5:
            times, b_now, later = rng.randint(2, 5), rng.randint(3, 14), rng.randint(2, 15)
            a_now = times * b_now
            question = (
                f"{a} is {times} times as old as {b}. {b} is {b_now} years old. "
                f"How old will {a} be in {later} years?"
            )
            steps = [
                f"{a} is {times} x {b_now} = {a_now} years old now.",
                f"In {later} years {a} will be {a_now} + {later} = {a_now + later}.",
            ]
            return _Problem(question, steps, a_now + later)
        b_now, gap = rng.randint(4, 40), rng.randint(1, 25)
        total = 2 * b_now + gap
        question = (
            f"The sum of {a}'s and {b}'s ages is {total}. {a} is {gap} years older than {b}. "
            f"How old is {b}?"
        )
        steps = [
            f"Without the {gap}-year gap the ages would sum to {total} - {gap} = {total - gap}.",
            f"So {b} is {total - gap} / 2 = {b_now} years old.",
        ]
        return _Problem(question, steps, b_now)
    # a = k*b now; in y years a + y = m*(b + y)  =>  y = b*(k - m)/(m - 1).
    while True:
        m = rng.choice((2, 3))
        k = rng.randint(m + 1, m + 3)
        b_now = rng.randint(2, 15)
        years = Fraction(b_now * (k - m), m - 1)
        if years.denominator == 1 and 0 < years <= 40:
            break
    y = int(years)
    a_now = k * b_now
    question = (
        f"{a} is {k} times as old as {b}. In {y} years, {a} will be {m} times as old as {b}. "
        f"How old is {a} now?"
    )
    steps = [
        f"Let {b}'s age now be b, so {a} is {k}b.",
        f"In {y} years: {k}b + {y} = {m}(b + {y}), so {k}b + {y} = {m}b + {m * y}.",
        f"Then {k - m}b = {m * y - y}, so b = {b_now}.",
        f"{a} is {k} x {b_now} = {a_now} years old.",
    ]
    return _Problem(question, steps, a_now)


def _percent_discount(rng: random.Random, difficulty: int) -> _Problem:
    name, he = _Story(rng).person()
    item = rng.choice(_SALE_ITEMS)
    if difficulty == 1:
        price = rng.randrange(20, 420, 20)
        rate = rng.choice((10, 20, 25, 30, 40, 50, 75))
        off = Fraction(price * rate, 100)
        sale = price - off
        ask_saving = rng.random() < 0.3
        question = (
            f"A {item} costs ${price}. It is on sale for {rate}% off. "
            + ("How many dollars does the discount save?" if ask_saving else "What is the sale price in dollars?")
        )
        steps = [f"The discount is {rate}% of ${price}, which is ${price} x {rate}/100 = {_money(off)}."]
        if not ask_saving:
            steps.append(f"The sale price is {_money(price)} - {_money(off)} = {_money(sale)}.")
        return _Problem(question, steps, off if ask_saving else sale)
    if difficulty == 2:
        qty, price = rng.randint(2, 9), rng.randint(3, 60)
        rate = rng.choice((5, 10, 15, 20, 25, 30))
        total = qty * price
        off = Fraction(total * rate, 100)
        pay = total - off
        question = (
            f"{name} buys {qty} tickets to a show at ${price} each. Buying in a group gives "
            f"{rate}% off the total. How much does {he} pay, in dollars?"
        )
        steps = [
            f"The tickets cost {qty} x {_money(price)} = {_money(total)} before the discount.",
            f"The discount is {rate}% of that: {_money(total)} x {rate}/100 = {_money(off)}.",
            f"{_cap(he)} pays {_money(total)} - {_money(off)} = {_money(pay)}.",
        ]
        return _Problem(question, steps, pay)
    price = rng.randrange(100, 1300, 100)
    r1, r2 = rng.choice((10, 20, 25, 30, 40)), rng.choice((5, 10, 15, 20, 25))
    coupon = rng.randrange(5, 30, 5)
    after1 = Fraction(price * (100 - r1), 100)
    after2 = after1 * Fraction(100 - r2, 100)
    final = after2 - coupon
    question = (
        f"A {item} costs ${price}. The store takes {r1}% off, and then an extra {r2}% off the "
        f"reduced price. {name} also has a ${coupon} coupon that is used last. How much does "
        f"{name} pay for the {item}, in dollars?"
    )
    steps = [
        f"After {r1}% off the price is {_money(price)} x {100 - r1}/100 = {_money(after1)}.",
        f"After the extra {r2}% off it is {_money(after1)} x {100 - r2}/100 = {_money(after2)}.",
        f"With the coupon {name} pays {_money(after2)} - {_money(coupon)} = {_money(final)}.",
    ]
    return _Problem(question, steps, final)


def _inventory(rng: random.Random, difficulty: int) -> _Problem:
    store, (_single, items) = rng.choice(_STORES)
    start = rng.randint(40, 120) * difficulty
    if difficulty == 1:
        sold, got = rng.randint(5, start - 5), rng.randint(5, 60)
        end = start - sold + got
        question = (
            f"A {store} has {start} {items}. It sells {sold} on Monday and receives a delivery of "
            f"{got} more on Tuesday. How many {items} does it have now?"
        )
        steps = [
            f"After Monday it has {start} - {sold} = {start - sold}.",
            f"After the delivery it has {start - sold} + {got} = {end}.",
        ]
        return _Problem(question, steps, end)
    boxes, per_box = rng.randint(2, 8), rng.randint(6, 24)
    received = boxes * per_box
    stock = start + received
    sold1 = rng.randint(10, stock // 2)
    stock1 = stock - sold1
    steps = [
        f"The delivery holds {boxes} x {per_box} = {received} {items}, so it has {start} + {received} = {stock}.",
        f"After selling {sold1} it has {stock} - {sold1} = {stock1}.",
    ]
    if difficulty == 2:
        sold2 = rng.randint(5, stock1 - 5)
        end = stock1 - sold2
        question = (
            f"A {store} has {start} {items}. It receives {boxes} boxes with {per_box} {items} in "
            f"each. It then sells {sold1} {items} on Saturday and {sold2} on Sunday. How many "
            f"{items} are left?"
        )
        steps.append(f"After Sunday it has {stock1} - {sold2} = {end}.")
        return _Problem(question, steps, end)
    frac = rng.choice((2, 3, 4, 5))
    # Sell a little more on Saturday so what is left divides evenly by `frac`.
    extra = stock1 % frac
    sold1 += extra
    stock1 -= extra
    steps[1] = f"After selling {sold1} it has {stock} - {sold1} = {stock1}."
    sold_frac = stock1 // frac
    stock2 = stock1 - sold_frac
    returned = rng.randint(1, max(1, min(12, stock2 // 4)))
    end = stock2 - returned
    word = {2: "half", 3: "a third", 4: "a quarter", 5: "a fifth"}[frac]
    question = (
        f"A {store} has {start} {items}. It receives {boxes} boxes with {per_box} {items} in each. "
        f"It sells {sold1} {items} on Saturday, then {word} of the remaining {items} on Sunday. "
        f"On Monday it sends {returned} damaged {items} back to the supplier. How many {items} "
        f"does it have now?"
    )
    steps += [
        f"On Sunday it sells {stock1} / {frac} = {sold_frac}, leaving {stock1} - {sold_frac} = {stock2}.",
        f"After returning {returned} it has {stock2} - {returned} = {end}.",
    ]
    return _Problem(question, steps, end)


def _area_perimeter(rng: random.Random, difficulty: int) -> _Problem:
    name, he = _Story(rng).person()
    if difficulty == 1:
        length, width = rng.randint(3, 30), rng.randint(2, 20)
        if rng.random() < 0.5:
            question = (
                f"A rectangular garden is {length} meters long and {width} meters wide. "
                f"What is its area in square meters?"
            )
            steps = [f"The area is {length} x {width} = {length * width} square meters."]
            return _Problem(question, steps, length * width)
        perim = 2 * (length + width)
        question = (
            f"A rectangular garden is {length} meters long and {width} meters wide. "
            f"What is its perimeter in meters?"
        )
        steps = [f"The perimeter is 2 x ({length} + {width}) = {perim} meters."]
        return _Problem(question, steps, perim)
    if difficulty == 2:
        length, width = rng.randint(5, 40), rng.randint(3, 25)
        if rng.random() < 0.5:
            cost = rng.randint(2, 15)
            perim = 2 * (length + width)
            question = (
                f"{name} wants to put a fence around a rectangular yard that is {length} feet long "
                f"and {width} feet wide. Fencing costs ${cost} per foot. How many dollars will "
                f"the fence cost?"
            )
            steps = [
                f"The perimeter is 2 x ({length} + {width}) = {perim} feet.",
                f"The fence costs {perim} x {_money(cost)} = {_money(perim * cost)}.",
            ]
            return _Problem(question, steps, perim * cost)
        perim = 2 * (length + width)
        question = (
            f"A rectangle has a perimeter of {perim} centimeters and a length of {length} "
            f"centimeters. What is its area in square centimeters?"
        )
        steps = [
            f"Length plus width is {perim} / 2 = {perim // 2}, so the width is {perim // 2} - {length} = {width}.",
            f"The area is {length} x {width} = {length * width} square centimeters.",
        ]
        return _Problem(question, steps, length * width)
    if rng.random() < 0.5:
        length, width = rng.randint(8, 30), rng.randint(6, 20)
        per_box = rng.choice((8, 10, 12, 15, 20, 25))
        area = length * width
        boxes = -(-area // per_box)
        question = (
            f"{name} is tiling a floor that is {length} feet by {width} feet with 1-foot square "
            f"tiles. The tiles come in boxes of {per_box}. How many boxes must {he} buy to cover "
            f"the whole floor?"
        )
        full, rest = divmod(area, per_box)
        steps = [f"The floor needs {length} x {width} = {area} tiles."]
        if rest:
            steps.append(f"{area} / {per_box} = {full} with a remainder of {rest}.")
            steps.append(f"One more box covers the rest: {full} + 1 = {boxes} boxes.")
        else:
            steps.append(f"{area} / {per_box} = {boxes} boxes exactly.")
        return _Problem(question, steps, boxes)
    length, width = rng.randint(12, 40), rng.randint(10, 30)
    side = rng.randint(2, min(length, width) - 4)
    cost = rng.randint(2, 9)
    area = length * width - side * side
    question = (
        f"A rectangular lawn is {length} meters by {width} meters. A square flower bed with "
        f"sides of {side} meters sits in the middle. Grass seed costs ${cost} per square meter. "
        f"How many dollars does it cost to seed the lawn around the flower bed?"
    )
    steps = [
        f"The lawn is {length} x {width} = {length * width} square meters.",
        f"The flower bed is {side} x {side} = {side * side} square meters.",
        f"The area to seed is {length * width} - {side * side} = {area} square meters.",
        f"The seed costs {area} x {_money(cost)} = {_money(area * cost)}.",
    ]
    return _Problem(question, steps, area * cost)


@lru_cache(maxsize=1)
def _two_worker_triples() -> list[tuple[int, int, int]]:
    """``(a, b, t)`` with ``1/a + 1/b = 1/t``, ``a < b``, all whole hours."""
    out = []
    for t in range(2, 16):
        for a in range(t + 1, 4 * t + 1):
            b = Fraction(a * t, a - t)
            if b.denominator == 1 and a < b <= 60:
                out.append((a, int(b), t))
    return out


@lru_cache(maxsize=1)
def _fill_drain_quads() -> list[tuple[int, int, int, int]]:
    """``(a, b, c, t)`` with ``1/a + 1/b - 1/c = 1/t``, all whole hours, the drain slower than A and B."""
    out = []
    for a in range(2, 21):
        for b in range(a + 1, 31):
            for c in range(b + 1, 61):
                rate = Fraction(1, a) + Fraction(1, b) - Fraction(1, c)
                if rate > 0 and (1 / rate).denominator == 1:
                    out.append((a, b, c, int(1 / rate)))
    return out


def _work_rate(rng: random.Random, difficulty: int) -> _Problem:
    story = _Story(rng)
    if difficulty == 1:
        single, plural, (_thing, things) = rng.choice(_MAKERS)
        count, rate, hours = rng.randint(2, 9), rng.randint(4, 30), rng.randint(2, 8)
        per_hour = count * rate
        question = (
            f"Each {single} in a workshop makes {rate} {things} per hour. How many {things} do "
            f"{count} {plural} make in {hours} hours?"
        )
        steps = [
            f"Together the {plural} make {count} x {rate} = {per_hour} {things} per hour.",
            f"In {hours} hours they make {per_hour} x {hours} = {per_hour * hours} {things}.",
        ]
        return _Problem(question, steps, per_hour * hours)
    if difficulty == 2:
        a, b, t = rng.choice(_two_worker_triples())
        p1, _ = story.person()
        p2, _ = story.person()
        job = rng.choice(_JOBS)
        question = (
            f"{p1} can {job} alone in {a} hours. {p2} can do the same job alone in {b} hours. "
            f"Working together at these rates, how many hours do they take?"
        )
        steps = [
            f"{p1} does 1/{a} of the job per hour and {p2} does 1/{b}.",
            f"Together they do 1/{a} + 1/{b} = {Fraction(1, t)} of the job per hour.",
            f"So the job takes {t} hours.",
        ]
        return _Problem(question, steps, t)
    a, b, c, t = rng.choice(_fill_drain_quads())
    tank = rng.choice(("tank", "pool", "water trough", "cistern", "pond", "rain barrel"))
    pipe = rng.choice(("pipe", "hose", "tap"))
    question = (
        f"{_cap(pipe)} A can fill a {tank} in {a} hours and {pipe} B can fill it in {b} hours. "
        f"A drain can empty the full {tank} in {c} hours. If the {tank} starts empty and both "
        f"{pipe}s and the drain are open, how many hours does it take to fill the {tank}?"
    )
    steps = [
        f"Per hour, A fills 1/{a}, B fills 1/{b} and the drain empties 1/{c} of the {tank}.",
        f"Together: 1/{a} + 1/{b} - 1/{c} = {Fraction(1, t)} of the {tank} per hour.",
        f"So the {tank} fills in {t} hours.",
    ]
    return _Problem(question, steps, t)


# (big unit, its singular, small unit, factor, question with {name}, {he}, {n}).
_CONVERSIONS = (
    ("feet", "foot", "inches", 12, "{name}'s rope is {n} feet long. How long is it in inches?"),
    ("yards", "yard", "feet", 3, "{name} buys {n} yards of ribbon. How many feet of ribbon is that?"),
    ("hours", "hour", "minutes", 60, "{name} spends {n} hours hiking. How many minutes is that?"),
    ("kilograms", "kilogram", "grams", 1000, "A sack holds {n} kilograms of flour. How many grams is that?"),
    ("meters", "meter", "centimeters", 100, "{name}'s garden hose is {n} meters long. How many centimeters is that?"),
    ("gallons", "gallon", "quarts", 4, "A fish tank holds {n} gallons of water. How many quarts is that?"),
    ("days", "day", "hours", 24, "{name} is away on a trip for {n} days. How many hours is that?"),
    ("weeks", "week", "days", 7, "{name}'s summer camp lasts {n} weeks. How many days is that?"),
    ("pounds", "pound", "ounces", 16, "{name}'s puppy weighs {n} pounds. How many ounces is that?"),
    ("liters", "liter", "milliliters", 1000, "A jug holds {n} liters of lemonade. How many milliliters is that?"),
)


def _unit_conversion(rng: random.Random, difficulty: int) -> _Problem:
    name, he = _Story(rng).person()
    if difficulty == 1:
        big, one, small, factor, text = rng.choice(_CONVERSIONS)
        amount = rng.randint(2, 25)
        question = text.format(name=name, he=he, n=amount)
        steps = [
            f"There are {factor} {small} in one {one}, so {amount} {big} is "
            f"{amount} x {factor} = {amount * factor} {small}."
        ]
        return _Problem(question, steps, amount * factor)
    if difficulty == 2:
        laps, track, days = rng.randint(2, 12), rng.choice((200, 250, 400, 500)), rng.randint(2, 7)
        meters = laps * track * days
        km = Fraction(meters, 1000)
        question = (
            f"{name} runs {laps} laps around a {track}-meter track every day for {days} days. "
            f"How many kilometers does {he} run in total?"
        )
        steps = [
            f"Each day {he} runs {laps} x {track} = {laps * track} meters.",
            f"Over {days} days that is {laps * track} x {days} = {meters} meters.",
            f"{meters} meters is {meters} / 1000 = {format_number(km)} kilometers.",
        ]
        return _Problem(question, steps, km)
    if rng.random() < 0.5:
        drip, days = rng.randint(2, 25), rng.randint(2, 10)
        per_day = drip * 60 * 24
        total_ml = per_day * days
        liters = Fraction(total_ml, 1000)
        question = (
            f"A leaky faucet drips {drip} milliliters of water every minute. How many liters of "
            f"water drip from it in {days} days?"
        )
        steps = [
            f"A day has 24 x 60 = 1440 minutes, so {drip} x 1440 = {per_day} milliliters drip per day.",
            f"In {days} days that is {per_day} x {days} = {total_ml} milliliters.",
            f"{total_ml} / 1000 = {format_number(liters)} liters.",
        ]
        return _Problem(question, steps, liters)
    cups, batches = rng.randint(2, 7), rng.randint(3, 12)
    need = cups * batches
    quarts = -(-need // 4)
    question = (
        f"{name} is baking {batches} batches of pancakes, and each batch needs {cups} cups of "
        f"milk. Milk is sold in quart cartons, and one quart is 4 cups. How many cartons must "
        f"{he} buy?"
    )
    full, rest = divmod(need, 4)
    steps = [f"{_cap(he)} needs {batches} x {cups} = {need} cups of milk."]
    if rest:
        steps.append(f"{need} / 4 = {full} with a remainder of {rest}.")
        steps.append(f"One more carton covers the rest: {full} + 1 = {quarts} cartons.")
    else:
        steps.append(f"{need} / 4 = {quarts} cartons exactly.")
    return _Problem(question, steps, quarts)


def _working_backward(rng: random.Random, difficulty: int) -> _Problem:
    story = _Story(rng)
    name, he = story.person()
    friend, _ = story.person()
    _single, items = rng.choice(_COUNTABLES)
    # Each op: (kind, amount). Kinds: "give" (-n), "buy" (+n), "lose" (-n), "half", "third", "double".
    n_ops = {1: 2, 2: 3, 3: 4}[difficulty]
    while True:
        ops: list[tuple[str, int]] = []
        multiplicative = {1: 0, 2: 1, 3: 2}[difficulty]
        kinds = ["mul"] * multiplicative + ["add"] * (n_ops - multiplicative)
        rng.shuffle(kinds)
        used: set[str] = set()
        for kind in kinds:
            pool = ("half", "third", "double") if kind == "mul" else ("give", "buy", "lose")
            op = rng.choice([k for k in pool if k not in used] or pool)
            used.add(op)
            ops.append((op, 0 if kind == "mul" else rng.randint(2, 8 * difficulty + 4)))
        lo = rng.randint(8, 30 * difficulty)
        for start in range(lo, lo + 60):
            amount = Fraction(start)
            ok = True
            for kind, n in ops:
                if kind in ("give", "lose"):
                    amount -= n
                elif kind == "buy":
                    amount += n
                elif kind == "half":
                    amount -= amount / 2
                elif kind == "third":
                    amount -= amount / 3
                else:
                    amount *= 2
                if amount.denominator != 1 or amount < 2:
                    ok = False
                    break
            if ok:
                break
        if ok:
            break
    phrases, steps = [], []
    values = [Fraction(start)]
    for kind, n in ops:
        cur = values[-1]
        if kind == "give":
            phrases.append(f"gave {friend} {n} of them")
            values.append(cur - n)
        elif kind == "lose":
            phrases.append(f"lost {n}")
            values.append(cur - n)
        elif kind == "buy":
            phrases.append(f"bought {n} more")
            values.append(cur + n)
        elif kind == "half":
            phrases.append(f"gave half of them to {friend}")
            values.append(cur / 2)
        elif kind == "third":
            phrases.append("gave away a third of them")
            values.append(cur - cur / 3)
        else:
            phrases.append("got as many again from a cousin")
            values.append(cur * 2)
    end = values[-1]
    for (kind, n), before, after in reversed(list(zip(ops, values, values[1:]))):
        b, a = format_number(before), format_number(after)
        if kind == "give":
            steps.append(f"Before giving {friend} {n}, {he} had {a} + {n} = {b}.")
        elif kind == "lose":
            steps.append(f"Before losing {n}, {he} had {a} + {n} = {b}.")
        elif kind == "buy":
            steps.append(f"Before buying {n} more, {he} had {a} - {n} = {b}.")
        elif kind == "half":
            steps.append(f"Giving away half left half, so before that {he} had {a} x 2 = {b}.")
        elif kind == "third":
            steps.append(f"Giving away a third left two thirds, so before that {he} had {a} x 3 / 2 = {b}.")
        else:
            steps.append(f"Doubling gave {a}, so before that {he} had {a} / 2 = {b}.")
    steps.append(f"So {name} started with {start} {items}.")
    question = (
        f"{name} had some {items}. {_cap(he)} {_listing(phrases)}, in that order, "
        f"and ended with {format_number(end)} {items}. How many {items} did {he} have at the start?"
    )
    return _Problem(question, steps, start)


_TEMPLATES: dict[str, Callable[[random.Random, int], _Problem]] = {
    "shopping_change": _shopping_change,
    "distance_rate_time": _distance_rate_time,
    "sharing_division": _sharing_division,
    "ages": _ages,
    "percent_discount": _percent_discount,
    "inventory": _inventory,
    "area_perimeter": _area_perimeter,
    "work_rate": _work_rate,
    "unit_conversion": _unit_conversion,
    "working_backward": _working_backward,
}


def template_names() -> list[str]:
    """The names of the built-in templates, in generation order."""
    return list(_TEMPLATES)


# ----------------------------------------------------------------------------- generation


def _check_choices(
    difficulties: Iterable[int], templates: Iterable[str] | None
) -> tuple[list[int], list[str]]:
    diffs = list(dict.fromkeys(difficulties))
    if not diffs:
        raise ConfigError(f"synthetic difficulties must not be empty; valid values: {list(DIFFICULTIES)}")
    bad = [d for d in diffs if d not in DIFFICULTIES]
    if bad:
        raise ConfigError(f"unknown synthetic difficulty {bad}; valid values: {list(DIFFICULTIES)}")
    names = list(dict.fromkeys(templates)) if templates is not None else template_names()
    if not names:
        raise ConfigError(f"synthetic templates must not be empty; valid templates: {', '.join(_TEMPLATES)}")
    unknown = [t for t in names if t not in _TEMPLATES]
    if unknown:
        raise ConfigError(f"unknown synthetic template(s) {unknown}; valid templates: {', '.join(_TEMPLATES)}")
    return diffs, names


def generate_word_problems(
    count: int,
    seed: int,
    difficulties: Sequence[int] = DIFFICULTIES,
    templates: Sequence[str] | None = None,
) -> list[QuestionRecord]:
    """Generate ``count`` word problems, deterministic in ``seed``.

    Templates cycle fastest and difficulties next, so any ``len(templates) * len(difficulties)``
    consecutive records cover every combination once. Each record has a GSM8K-style worked
    ``solution`` ending in ``#### <answer>``, the ``answer`` alone, an id
    ``synthetic-<seed>-<index>`` and ``metadata = {"template": ..., "difficulty": ...}``.

    Raises :class:`~polya.core.errors.ConfigError` for a negative count or unknown
    templates/difficulties.
    """
    if count < 0:
        raise ConfigError(f"synthetic count must be >= 0, got {count}")
    diffs, names = _check_choices(difficulties, templates)
    records: list[QuestionRecord] = []
    seen: set[str] = set()
    for index in range(count):
        name = names[index % len(names)]
        difficulty = diffs[(index // len(names)) % len(diffs)]
        rng = random.Random(f"polya-synthetic:{seed}:{index}")
        for _attempt in range(50):
            problem = _TEMPLATES[name](rng, difficulty)
            if problem.question not in seen:
                break
        seen.add(problem.question)
        answer = format_number(problem.answer)
        solution = "\n".join(problem.steps) + f"\n#### {answer}"
        records.append(
            QuestionRecord(
                id=f"{SOURCE_NAME}-{seed}-{index}",
                question=problem.question,
                answer=answer,
                solution=solution,
                source=SOURCE_NAME,
                metadata={"template": name, "difficulty": difficulty},
            )
        )
    return records


__all__ = ["DIFFICULTIES", "format_number", "generate_word_problems", "template_names"]
