from retbench.cli import main

main()
